"""Optimisation of the image: L-BFGS (default) or Adam, with progress and stopping.

An *iteration* is one optimizer step. For L-BFGS a step runs a strong-Wolfe line
search that may evaluate the loss and gradient several times; ``evaluations``
counts every evaluation (the initial one included). Iteration 0 is the initial
image, before any update. Nothing here prints, opens files or exits: progress
goes to a callback, stopping is asked through ``should_stop``, and problems are
raised as typed exceptions carrying the last good iterate.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim.lbfgs import _strong_wolfe  # the line search of torch.optim.LBFGS

from .errors import Diverged, Interrupted

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
StepCallback = Callable[["StepState"], None]

#: L-BFGS history is capped so that it never takes more than this many bytes
HISTORY_BYTES = 1 << 30
#: the first L-BFGS trial step moves the pixel with the steepest gradient this far (0..255)
FIRST_STEP = 1.0
#: what the line search sees where the loss is not finite
NONFINITE_PENALTY = 1e30


@dataclass(frozen=True)
class StepState:
    """What the callback sees after each iteration; ``x`` must not be modified."""

    iteration: int
    evaluations: int
    loss: float
    terms: torch.Tensor  # detached per-term values (Objective.term_names order)
    x: torch.Tensor
    elapsed: float


@dataclass(frozen=True)
class OptimizeResult:
    x: torch.Tensor
    iterations: int
    evaluations: int
    loss: float
    reason: str  # completed | converged | cancelled
    elapsed: float


class _Evaluator:
    """Loss and gradient at a flat point; counts evaluations, remembers terms by point."""

    def __init__(self, objective: Objective, shape: torch.Size) -> None:
        self.objective = objective
        self.shape = shape
        self.count = 0

    def __call__(self, flat: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
        x = flat.detach().view(self.shape).requires_grad_(True)
        loss, terms = self.objective(x)
        (grad,) = torch.autograd.grad(loss, x)
        self.count += 1
        return float(loss.detach()), grad.reshape(-1), terms


def _finite(value: float, grad: torch.Tensor) -> bool:
    return math.isfinite(value) and bool(torch.isfinite(grad).all())


class _Run:
    """The state one minimisation shares between its loop and its reports."""

    def __init__(
        self,
        objective: Objective,
        x: torch.Tensor,
        on_step: StepCallback | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.x = x
        self.evaluate = _Evaluator(objective, x.shape)
        self.on_step = on_step
        self.stop = should_stop or (lambda: False)
        self.iteration = 0
        self.start = time.perf_counter()

    def report(self, iteration: int, loss: float, terms: torch.Tensor) -> None:
        self.iteration = iteration
        if self.on_step is not None:
            elapsed = time.perf_counter() - self.start
            self.on_step(StepState(iteration, self.evaluate.count, loss, terms, self.x, elapsed))

    def diverged(self) -> Diverged:
        return Diverged(
            f"the loss became NaN or infinite after iteration {self.iteration}; try a "
            "smaller --lr, lower weights or --precision fp32 (the last finite image was kept)",
            image=self.x,
            iteration=self.iteration,
        )


def minimize(
    objective: Objective,
    x0: torch.Tensor,
    *,
    iterations: int,
    method: str = "lbfgs",
    lr: float = 1.0,
    history: int = 50,
    on_step: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    clamp: tuple[float, float] | None = (0.0, 255.0),
) -> OptimizeResult:
    """Minimise ``objective`` over the pixels of ``x0`` (not modified).

    ``clamp`` bounds the pixels after each Adam step (L-BFGS runs unconstrained; the
    caller clamps the final image). Raises :class:`Diverged` on a non-finite loss and
    :class:`Interrupted` on KeyboardInterrupt, both carrying the last good iterate in
    the optimisation space (the caller converts it to an image).
    """
    run = _Run(objective, x0.detach().clone().contiguous(), on_step, should_stop)
    try:
        if method == "lbfgs":
            loss, reason = _lbfgs(run, iterations, lr, history)
        elif method == "adam":
            loss, reason = _adam(run, iterations, lr, clamp)
        else:
            raise ValueError(f"unknown optimizer {method!r}")
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after iteration {run.iteration}", image=run.x, iteration=run.iteration
        ) from None
    elapsed = time.perf_counter() - run.start
    return OptimizeResult(run.x, run.iteration, run.evaluate.count, loss, reason, elapsed)


def _lbfgs(run: _Run, iterations: int, lr: float, history: int) -> tuple[float, str]:
    flat = run.x.view(-1)
    evaluate = run.evaluate
    # at most HISTORY_BYTES of (s, y) pairs
    pair_bytes = 2 * flat.numel() * flat.element_size()
    m = max(3, min(history, HISTORY_BYTES // max(pair_bytes, 1)))
    old_s: deque[torch.Tensor] = deque(maxlen=m)
    old_y: deque[torch.Tensor] = deque(maxlen=m)
    rho: deque[float] = deque(maxlen=m)

    f, g, terms = evaluate(flat)
    if not _finite(f, g):
        raise run.diverged()
    run.report(0, f, terms)
    if iterations == 0:
        return f, "completed"

    def first_step(grad: torch.Tensor) -> float:
        # a steepest-descent trial that moves the steepest pixel by FIRST_STEP units:
        # meaningful in pixel space whatever the loss scale (torch's 1/|g|_1 moves pixels
        # by ~1e-5 here, below what bf16 inputs resolve, and the search then stalls)
        top = float(grad.abs().max())
        return lr * FIRST_STEP / top if top > 0 else lr

    d = g.neg()
    t = first_step(g)
    h_diag = 1.0
    seen: dict[float, torch.Tensor] = {}
    nonfinite = [False]

    def obj(
        base: torch.Tensor, step: object, direction: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        step_f = float(step)  # type: ignore[arg-type]
        value, grad, tr = evaluate(base + step_f * direction)
        if not _finite(value, grad):
            # a huge (finite) value fails the Armijo test, so the line search backs off;
            # inf would turn its cubic interpolation into NaN steps
            nonfinite[0] = True
            return NONFINITE_PENALTY, torch.zeros_like(grad)
        seen[step_f] = tr
        return value, grad

    k = 0
    restarted = False
    while k < iterations:
        if run.stop():
            return f, "cancelled"
        gtd = float(g.dot(d))
        if gtd > -1e-12 * max(1.0, abs(f)):
            if restarted or not old_s:
                return f, "converged"
            d, t, restarted = g.neg(), first_step(g), True  # not a descent direction
            _forget(old_s, old_y, rho)
            continue
        seen.clear()
        nonfinite[0] = False
        f_new, g_new, t_new, _ = _strong_wolfe(obj, flat, t, d, f, g, gtd)
        t = float(t_new)
        f_new = float(f_new)
        if t == 0.0 or t not in seen or f_new >= f:
            # no acceptable point on this line
            if restarted or not old_s:
                if nonfinite[0] and not seen:
                    raise run.diverged()
                return f, "converged"
            # forget the curvature pairs and try steepest descent once more
            d, t, restarted = g.neg(), first_step(g), True
            _forget(old_s, old_y, rho)
            continue
        restarted = False
        k += 1
        step = d.mul(t)
        flat.add_(step)
        y = g_new - g
        ys = float(y.dot(step))
        if ys > 1e-10:
            old_s.append(step)
            old_y.append(y)
            rho.append(1.0 / ys)
            h_diag = ys / float(y.dot(y))
        change = abs(f_new - f)
        f, g = f_new, g_new
        run.report(k, f, seen[t])
        if change <= 1e-12 * max(1.0, abs(f)) or float(step.abs().max()) <= 1e-9:
            return f, "converged"
        # two-loop recursion for the next direction
        q = g.neg()
        alphas: list[float] = []
        for s_i, y_i, r_i in zip(reversed(old_s), reversed(old_y), reversed(rho)):
            a = r_i * float(s_i.dot(q))
            q.add_(y_i, alpha=-a)
            alphas.append(a)
        d = q.mul_(h_diag)
        for s_i, y_i, r_i, a in zip(old_s, old_y, rho, reversed(alphas)):
            b = r_i * float(y_i.dot(d))
            d.add_(s_i, alpha=a - b)
        t = lr
    return f, "completed"


def _forget(*histories: deque) -> None:
    for h in histories:
        h.clear()


def _adam(
    run: _Run, iterations: int, lr: float, clamp: tuple[float, float] | None
) -> tuple[float, str]:
    flat = run.x.view(-1)
    param = torch.nn.Parameter(flat.detach().clone())
    opt = torch.optim.Adam([param], lr=lr)
    f, g, terms = run.evaluate(param.data)
    if not _finite(f, g):
        raise run.diverged()
    run.report(0, f, terms)
    for k in range(1, iterations + 1):
        if run.stop():
            return f, "cancelled"
        param.grad = g.view_as(param)
        opt.step()
        if clamp is not None:
            param.data.clamp_(*clamp)
        f_new, g_new, terms = run.evaluate(param.data)
        if not _finite(f_new, g_new):
            raise run.diverged()
        flat.copy_(param.data)
        f, g = f_new, g_new
        run.report(k, f, terms)
    return f, "completed"
