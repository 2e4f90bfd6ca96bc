"""Optimisation of the image: L-BFGS (default) or Adam, with progress and stopping.

An *iteration* is one optimizer step. For L-BFGS a step runs a strong-Wolfe line
search that may evaluate the loss and gradient several times; ``evaluations``
counts every evaluation (the initial one included). Iteration 0 is the initial
image, before any update. Nothing here prints, opens files or exits: progress
goes to a callback, stopping is asked through ``should_stop``, and problems are
raised as typed exceptions carrying the last good iterate.

The line search is this module's own (bracketing and zoom with safeguarded cubic
interpolation, Nocedal & Wright, *Numerical Optimization*, algorithms 3.5 and 3.6),
so it depends on no private part of torch.
"""

from __future__ import annotations

import functools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from .errors import Diverged, Interrupted, WorkersLost
from .objective.objective import TermValues

#: x -> (the total with grad, the term values by name), as nst.objective.Objective
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, TermValues]]
StepCallback = Callable[["StepState"], None]


@runtime_checkable
class TiledEvaluation(Protocol):
    """An objective that may evaluate in tiles (an nst :class:`~nst.objective.Objective`):
    with ``tiling`` set, its loss and gradient come together from ``value_and_grad``."""

    tiling: object | None

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, TermValues]: ...


#: (the iterate after a step, the gradient that step took) -> the iterate to go on from
Projection = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: L-BFGS history is capped so that it never takes more than this many bytes: 50 pairs
#: up to 512x384 px in fp32, 20 at 1024x768 (where coarse to fine runs its last stage
#: from an already good image); with 1 GiB a 1024 px run peaked above 2 GB
HISTORY_BYTES = 384 << 20
#: fewest L-BFGS pairs kept, whatever the size (the memory planner counts them too)
MIN_PAIRS = 3
#: the first L-BFGS trial step moves the pixel with the steepest gradient this far (0..255)
FIRST_STEP = 1.0
#: what the line search sees where the loss is not finite
NONFINITE_PENALTY = 1e30
#: sufficient decrease (Armijo) and curvature constants of the strong Wolfe conditions
ARMIJO_C1 = 1e-4
CURVATURE_C2 = 0.9
#: evaluations one line search may spend
MAX_LINE_EVALUATIONS = 25
#: a line-search bracket narrower than this (in pixels moved) ends the search
BRACKET_TOL = 1e-9
#: converged when the loss changes by less than this, relative to its size
LOSS_CHANGE_TOL = 1e-12
#: converged when no pixel moves by more than this (0..255 units)
PIXEL_STEP_TOL = 1e-9
#: not a descent direction when g.d > -DESCENT_TOL * max(1, |f|)
DESCENT_TOL = 1e-12
#: a curvature pair is kept only when y.s is above this
CURVATURE_TOL = 1e-10


@dataclass(frozen=True)
class Variant:
    """How L-BFGS computes what it computes (the iterates are the same up to rounding);
    ``benchmarks/iteration.py`` measures each against the others."""

    #: a line-search trial computes its gradient only when the search needs it (False:
    #: at once, as before)
    lazy_gradients: bool = True
    #: the memory in the compact representation (False: the two-loop recursion)
    compact_history: bool = True


@dataclass(frozen=True)
class OptimizerState:
    """Everything the next iteration of a minimisation depends on, at an iteration's end:
    the iterate ``x`` (flat), its loss and gradient, the iteration and evaluation counts,
    and the method's memory as the optimizer holds it (L-BFGS: the compact history's
    buffers and small matrices, or the two-loop pairs; Adam: torch's state dict). Given to
    :func:`minimize` as ``resume``, the run goes on exactly as if it had not stopped.
    The tensors are the optimizer's own (no copy): save them before the next iteration."""

    method: str
    iteration: int
    evaluations: int
    x: torch.Tensor
    loss: float
    grad: torch.Tensor
    memory: dict[str, Any]
    #: the run had converged at this iteration (a resumed run ends there too)
    converged: bool = False
    #: ``settle``: the picture at its last check (8-bit) and how much it had changed then
    reference: torch.Tensor | None = None
    recent: tuple[float, ...] = ()


@dataclass(frozen=True)
class Settle:
    """``--iterations auto``: a minimisation ends ("settled") once the picture as saved
    (8-bit, clamped) changed by less than ``levels`` per pixel on average over the last
    ``window`` iterations: checked every ``window`` iterations, against the picture at the
    check before (a span, not each step's change: an 8-bit picture's rounding flickers
    from step to step without drifting)."""

    levels: float
    window: int

    def picture(self, x: torch.Tensor) -> torch.Tensor:
        """The iterate as an 8-bit picture would hold it."""
        return x.detach().float().clamp(0, 255).round().to(torch.uint8)


#: ``--iterations auto``: a stage ends once the saved picture changed by less than this
#: many levels per pixel on average over the last this many iterations (measured with
#: benchmarks/auto_stop.py: docs/PERFORMANCE.md)
SETTLE = Settle(levels=1.5, window=10)


@dataclass(frozen=True)
class StepState:
    """What the callback sees after each iteration; ``x`` must not be modified.
    ``snapshot()`` gives the optimizer's whole state at this iteration (while the callback
    runs), for a checkpoint."""

    iteration: int
    evaluations: int
    loss: float
    terms: TermValues  # detached term values by name
    x: torch.Tensor
    elapsed: float
    snapshot: Callable[[], OptimizerState | None] = field(
        default=lambda: None, repr=False, compare=False
    )


@dataclass(frozen=True)
class OptimizeResult:
    x: torch.Tensor
    iterations: int
    evaluations: int
    loss: float
    reason: str  # completed | converged | settled | cancelled
    elapsed: float


class _Point:
    """A point on the search line: step t, loss f, and (on first use) the gradient g and
    the directional derivative gtd.

    The gradient of a trial point is computed only when the line search asks for it: a
    trial that fails the sufficient-decrease test needs its loss alone, so its backward
    pass (two thirds of an evaluation) is skipped. A point's pending gradient must be asked
    for before the next trial is evaluated, which releases it (one autograd graph alive
    at a time, so memory stays that of one evaluation).
    """

    __slots__ = ("_d", "_g", "_grad", "_gtd", "f", "t", "terms")

    def __init__(
        self,
        t: float,
        f: float,
        g: torch.Tensor | None,
        gtd: float | None,
        terms: TermValues | None,
        grad: Callable[[], torch.Tensor] | None = None,
        d: torch.Tensor | None = None,
    ) -> None:
        self.t, self.f, self.terms = t, f, terms
        self._g, self._gtd, self._grad, self._d = g, gtd, grad, d

    @property
    def has_grad(self) -> bool:
        return self._g is not None

    @property
    def g(self) -> torch.Tensor:
        if self._g is None:
            if self._grad is None:
                raise RuntimeError("the gradient of a released line-search point")
            self._g, self._grad = self._grad(), None
        return self._g

    @property
    def gtd(self) -> float:
        if self._gtd is None:
            assert self._d is not None
            self._gtd = float(self.g.dot(self._d))
        return self._gtd

    def release(self) -> None:
        """Forget a gradient not asked for (frees the evaluation's autograd graph)."""
        self._grad = None


class _Evaluator:
    """Loss and gradient at a flat point; counts evaluations."""

    def __init__(self, objective: Objective, shape: torch.Size) -> None:
        self.objective = objective
        self.shape = shape
        self.count = 0

    def __call__(self, flat: torch.Tensor) -> tuple[float, torch.Tensor, TermValues]:
        value, terms, gradient = self.lazily(flat)
        return value, gradient(), terms

    def lazily(self, flat: torch.Tensor) -> tuple[float, TermValues, Callable[[], torch.Tensor]]:
        """The loss and terms now; the gradient when the returned function is called
        (the forward pass's graph is kept until then). A tiled nst Objective computes
        both at once (its gradient pass needs the statistics of every tile)."""
        x = flat.detach().view(self.shape)
        self.count += 1
        if isinstance(self.objective, TiledEvaluation) and self.objective.tiling is not None:
            loss, grad, terms = self.objective.value_and_grad(x)
            flat_grad = grad.reshape(-1)
            return float(loss.detach()), terms, lambda: flat_grad
        x = x.requires_grad_(True)
        loss, terms = self.objective(x)
        value = float(loss.detach())
        if not loss.requires_grad:  # every weight 0: nothing moves the image
            return value, terms, lambda: torch.zeros_like(flat)

        def gradient() -> torch.Tensor:
            (grad,) = torch.autograd.grad(loss, x)
            return grad.reshape(-1)

        return value, terms, gradient


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
        settle: Settle | None = None,
        resume: OptimizerState | None = None,
    ) -> None:
        self.x = x
        self.settle = settle
        #: the picture at the last check, which the next one's change is measured from
        self.reference: torch.Tensor | None = None
        self.recent: list[float] = []
        if settle is not None:
            kept = resume.reference if resume is not None else None
            self.reference = kept.clone() if kept is not None else settle.picture(x)
            self.recent = list(resume.recent) if resume is not None else []
        self.evaluate = _Evaluator(objective, x.shape)
        self.on_step = on_step
        self.stop = should_stop or (lambda: False)
        self.iteration = 0
        self.start = time.perf_counter()
        #: the solver's state at the last report, while it is still the current state (an
        #: update in progress makes it None until the next report)
        self.state: Callable[[], OptimizerState] | None = None

    def report(
        self,
        iteration: int,
        loss: float,
        terms: TermValues,
        state: Callable[[], OptimizerState] | None = None,
    ) -> None:
        self.iteration = iteration
        self.state = state
        if self.on_step is not None:
            elapsed = time.perf_counter() - self.start
            count = self.evaluate.count
            self.on_step(StepState(iteration, count, loss, terms, self.x, elapsed, self.snapshot))

    def settled(self, iteration: int) -> bool:
        """After ``iteration``: at a check (every ``settle.window``), whether the picture
        changed by less than ``settle.levels`` per pixel since the check before."""
        if self.settle is None or self.reference is None or iteration % self.settle.window:
            return False
        now = self.settle.picture(self.x)
        change = float((now.int() - self.reference.int()).abs().float().mean())
        self.reference, self.recent = now, [*self.recent[-9:], change]
        return self.still()

    def still(self) -> bool:
        """Whether the last check found the picture settled (a resumed run that had
        settled ends at once)."""
        return (
            self.settle is not None and bool(self.recent) and (self.recent[-1] < self.settle.levels)
        )

    def snapshot(self) -> OptimizerState | None:
        """The state at the last report, or None while an update is under way."""
        return self.state() if self.state is not None else None

    def updating(self) -> None:
        """The iterate or the memory is about to change: no snapshot until the next report."""
        self.state = None

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
    history_dtype: torch.dtype | None = None,
    on_step: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    clamp: tuple[float, float] | None = (0.0, 255.0),
    resume: OptimizerState | None = None,
    variant: Variant = Variant(),
    after_step: Projection | None = None,
    settle: Settle | None = None,
) -> OptimizeResult:
    """Minimise ``objective`` over the pixels of ``x0`` (not modified).

    ``clamp`` bounds the pixels after each Adam step (L-BFGS runs unconstrained; the
    caller clamps the final image). Raises :class:`Diverged` on a non-finite loss and
    :class:`Interrupted` on KeyboardInterrupt, both carrying the last good iterate in
    the optimisation space (the caller converts it to an image). ``resume`` (a
    :class:`OptimizerState` of the same method and shape) continues a minimisation after
    that state's iteration instead of starting at ``x0``; the iterations, the evaluations
    and the steps that follow are those the uninterrupted run would have made.
    ``variant`` chooses how L-BFGS computes (:class:`Variant`; the defaults are the fastest).
    ``after_step`` (Adam) maps each new iterate, shaped as ``x0``, and the gradient the
    step took to the iterate the next evaluation sees (the regularizers of gradient
    ascent: blur, clipping), after ``clamp``. ``settle`` ends the minimisation early, with
    the reason ``settled``, once the picture stops changing (:class:`Settle`).
    """
    if resume is not None and (resume.method != method or resume.x.numel() != x0.numel()):
        raise ValueError("resume: a state of another method or image size")
    start = x0 if resume is None else resume.x.view_as(x0)
    run = _Run(objective, start.detach().clone().contiguous(), on_step, should_stop, settle,
               resume)  # fmt: skip
    try:
        if method == "lbfgs":
            solver = LBFGS(run, lr, history, history_dtype, variant)
            loss, reason = solver.solve(iterations, resume)
        elif method == "adam":
            loss, reason = _adam(run, iterations, lr, clamp, resume, after_step)
        else:
            raise ValueError(f"unknown optimizer {method!r}")
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after iteration {run.iteration}", image=run.x, iteration=run.iteration
        ) from None
    except WorkersLost as exc:  # the tile workers are gone: stop as an interruption does
        raise Interrupted(str(exc), image=run.x, iteration=run.iteration) from None
    elapsed = time.perf_counter() - run.start
    return OptimizeResult(run.x, run.iteration, run.evaluate.count, loss, reason, elapsed)


# -- L-BFGS ----------------------------------------------------------------------------------
class History:
    """The L-BFGS memory: curvature pairs (s, y) and the two-loop recursion. ``dtype``
    stores the pairs in a lower precision (bfloat16 halves the memory of a print-size
    history); the recursion itself runs in the gradient's precision."""

    def __init__(self, size: int, dtype: torch.dtype | None = None) -> None:
        self.dtype = dtype
        self.s: deque[torch.Tensor] = deque(maxlen=size)
        self.y: deque[torch.Tensor] = deque(maxlen=size)
        self.rho: deque[float] = deque(maxlen=size)
        self.h_diag = 1.0  # initial inverse-Hessian scale, y.s / y.y of the newest pair

    def __len__(self) -> int:
        return len(self.s)

    @property
    def capacity(self) -> int:
        return self.s.maxlen or 0

    def push(self, s: torch.Tensor, y: torch.Tensor, g_next: torch.Tensor | None = None) -> None:
        """Keep the pair if it has positive curvature (y.s > CURVATURE_TOL); ``g_next`` is
        :class:`CompactHistory`'s (the two-loop recursion has no pass to share)."""
        if self.dtype is not None:
            s, y = s.to(self.dtype), y.to(self.dtype)
        ys = float(y.float().dot(s.float()))
        if ys > CURVATURE_TOL:
            self.s.append(s)
            self.y.append(y)
            self.rho.append(1.0 / ys)
            self.h_diag = ys / float(y.float().dot(y.float()))

    def clear(self) -> None:
        self.s.clear()
        self.y.clear()
        self.rho.clear()
        self.h_diag = 1.0

    def state(self) -> dict[str, Any]:
        """The pairs as they are held (for :class:`OptimizerState`)."""
        return {"kind": "pairs", "s": list(self.s), "y": list(self.y), "rho": list(self.rho),
                "h_diag": self.h_diag}  # fmt: skip

    def restore(self, state: dict[str, Any], grad: torch.Tensor | None = None) -> None:
        self.clear()
        for s, y, rho in zip(state["s"], state["y"], state["rho"]):
            self.s.append(s)
            self.y.append(y)
            self.rho.append(float(rho))
        self.h_diag = float(state["h_diag"])

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H g by the two-loop recursion."""
        q = g.neg()
        alphas: list[float] = []
        wide = self.dtype is not None
        for s_i, y_i, r_i in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            a = r_i * float((s_i.to(q.dtype) if wide else s_i).dot(q))
            q.add_(y_i, alpha=-a)
            alphas.append(a)
        d = q.mul_(self.h_diag)
        for s_i, y_i, r_i, a in zip(self.s, self.y, self.rho, reversed(alphas)):
            b = r_i * float((y_i.to(d.dtype) if wide else y_i).dot(d))
            d.add_(s_i, alpha=a - b)
        return d


class CompactHistory:
    """The L-BFGS memory in the compact representation (Byrd, Nocedal & Schnabel 1994;
    Nocedal & Wright eq. 7.24): the pairs are rows of two (m, n) buffers, and -H g is
    computed from S^T g and Y^T g and one combination of the rows, with the small (m, m)
    matrices S^T Y and Y^T Y kept up to date in float64. The same direction as the
    two-loop recursion (:class:`History`), reading the history 4 times per iteration
    instead of about 10 (benchmarks/iteration.py measures the two).
    """

    def __init__(self, size: int) -> None:
        self.capacity = size
        self.S: torch.Tensor | None = None  # (size, n), row k = the pair in slot k
        self.Y: torch.Tensor | None = None
        self.count = 0  # slots filled: 0..count-1
        self.order: list[int] = []  # slots, oldest pair first
        self.sy = torch.zeros(size, size, dtype=torch.float64)  # [i, j] = s_i . y_j by slot
        self.yy = torch.zeros(size, size, dtype=torch.float64)  # [i, j] = y_i . y_j
        self.h_diag = 1.0
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # S^T g, Y^T g
        self._pending_for: torch.Tensor | None = None  # the g they were made for

    def __len__(self) -> int:
        return len(self.order)

    def clear(self) -> None:
        self.count = 0
        self.order.clear()
        self.h_diag = 1.0
        self._pending = self._pending_for = None

    def state(self) -> dict[str, Any]:
        """The filled rows of the buffers, the small matrices, the order and the products
        already made for the next direction, as they are held (no conversion)."""
        n = self.count
        rows = (self.S, self.Y) if self.S is not None and self.Y is not None else ()
        return {
            "kind": "compact",
            # a full history is saved as held; a part of one as its filled rows (a view
            # would be saved with the whole buffer)
            "rows": [r if n == r.shape[0] else r[:n].clone() for r in rows],
            "count": n,
            "order": list(self.order),
            "sy": self.sy[:n, :n].clone(),
            "yy": self.yy[:n, :n].clone(),
            "h_diag": self.h_diag,
            "pending": list(self._pending) if self._pending is not None else [],
        }

    def restore(self, state: dict[str, Any], grad: torch.Tensor | None = None) -> None:
        """The memory as ``state`` holds it; its products for the next direction are for
        ``grad`` (the state's gradient)."""
        n = int(state["count"])
        if n > self.capacity:
            raise ValueError("resume: more L-BFGS pairs than this run keeps")
        self.clear()
        if n:
            s_rows, y_rows = state["rows"]
            self.S = s_rows.new_empty(self.capacity, s_rows.shape[1])
            self.Y = y_rows.new_empty(self.capacity, y_rows.shape[1])
            self.S[:n].copy_(s_rows)
            self.Y[:n].copy_(y_rows)
        self.count = n
        self.order = [int(k) for k in state["order"]]
        self.sy[:n, :n] = state["sy"]
        self.yy[:n, :n] = state["yy"]
        self.h_diag = float(state["h_diag"])
        pending = state["pending"]
        self._pending = (pending[0], pending[1]) if pending and grad is not None else None
        self._pending_for = grad if self._pending is not None else None

    def push(self, s: torch.Tensor, y: torch.Tensor, g_next: torch.Tensor | None = None) -> None:
        """Keep the pair if it has positive curvature (y.s > CURVATURE_TOL). ``g_next``,
        the gradient the next direction is for, shares the pass over the buffers."""
        self._pending = self._pending_for = None
        ys = float(y.dot(s))
        if ys <= CURVATURE_TOL:
            return
        if self.S is None or self.Y is None:
            self.S = s.new_empty(self.capacity, s.numel())
            self.Y = s.new_empty(self.capacity, s.numel())
        n = self.count
        cols = [y, s] if g_next is None else [y, s, g_next]
        if n:
            # one pass over each buffer: S^T [y, (g)] and Y^T [y, s, (g)]
            sv = self.S[:n] @ torch.stack([y, *cols[2:]], 1)
            yv = self.Y[:n] @ torch.stack(cols, 1)
        slot = n if n < self.capacity else self.order.pop(0)
        if n:
            # the slot being replaced still holds the old pair: its entries are rewritten
            self.sy[:n, slot] = sv[:, 0].double()
            self.sy[slot, :n] = yv[:, 1].double()
            self.yy[:n, slot] = yv[:, 0].double()
            self.yy[slot, :n] = yv[:, 0].double()
        self.S[slot].copy_(s)
        self.Y[slot].copy_(y)
        yy = float(y.dot(y))
        self.sy[slot, slot], self.yy[slot, slot] = ys, yy
        self.count = max(n, slot + 1)
        self.order.append(slot)
        self.h_diag = ys / yy
        if g_next is not None:
            m = self.count
            a, b = s.new_empty(m), s.new_empty(m)
            if n:
                a[:n], b[:n] = sv[:, -1], yv[:, -1]
            a[slot], b[slot] = s.dot(g_next), y.dot(g_next)
            self._pending, self._pending_for = (a, b), g_next

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H g."""
        if not self.order:
            return g.neg()
        assert self.S is not None and self.Y is not None
        m = self.count
        if self._pending is not None and g is self._pending_for:
            # kept until the next pair: a state saved after this direction still holds
            # them, so a run continued from it takes the same direction
            a, b = self._pending
        else:
            a, b = self.S[:m] @ g, self.Y[:m] @ g
        idx = torch.tensor(self.order)
        a64, b64 = a.double().cpu()[idx], b.double().cpu()[idx]
        sy = self.sy[idx][:, idx]
        r = torch.triu(sy)
        gamma = self.h_diag
        u = torch.linalg.solve_triangular(r, a64.unsqueeze(1), upper=True)
        inner = torch.diag(torch.diagonal(sy)).mm(u) + gamma * self.yy[idx][:, idx].mm(u)
        top = torch.linalg.solve_triangular(r.T, inner - gamma * b64.unsqueeze(1), upper=False)
        # H g = gamma g + S top - gamma Y u  (rows in slot order)
        cs = torch.zeros(m, dtype=torch.float64)
        cy = torch.zeros(m, dtype=torch.float64)
        cs[idx], cy[idx] = top.squeeze(1), -gamma * u.squeeze(1)
        hg = torch.addmv(g, self.S[:m].T, cs.to(g), beta=gamma)
        hg = torch.addmv(hg, self.Y[:m].T, cy.to(g))
        return hg.neg_()


class LBFGS:
    """L-BFGS on the pixels with a strong-Wolfe line search, one step per iteration."""

    def __init__(
        self,
        run: _Run,
        lr: float,
        history: int,
        history_dtype: torch.dtype | None = None,
        variant: Variant = Variant(),
    ) -> None:
        self.run = run
        self.variant = variant
        self.lr = lr
        flat = run.x.view(-1)
        size = (history_dtype or flat.dtype).itemsize
        pair_bytes = 2 * flat.numel() * size
        pairs = max(MIN_PAIRS, min(history, HISTORY_BYTES // max(pair_bytes, 1)))
        self.memory: History | CompactHistory = (
            History(pairs, history_dtype)
            if history_dtype is not None or not variant.compact_history
            else CompactHistory(pairs)
        )
        self.nonfinite = False
        self.last: _Point | None = None  # the newest trial point (its gradient may be pending)

    def first_step(self, grad: torch.Tensor) -> float:
        """A steepest-descent trial that moves the steepest pixel by FIRST_STEP units:
        meaningful in pixel space whatever the loss scale (torch's 1/|g|_1 moves pixels by
        ~1e-5 here, below what bf16 inputs resolve, and the search then stalls)."""
        top = float(grad.abs().max())
        return self.lr * FIRST_STEP / top if top > 0 else self.lr

    def _at(self, base: torch.Tensor, d: torch.Tensor, t: float) -> _Point:
        if self.last is not None:
            self.last.release()
        value, terms, gradient = self.run.evaluate.lazily(base + t * d)
        if not math.isfinite(value):
            # a huge (finite) value fails the Armijo test, so the search backs off; inf
            # would turn the cubic interpolation into NaN steps
            self.nonfinite = True
            self.last = None
            return _Point(t, NONFINITE_PENALTY, torch.zeros_like(base), 0.0, None)

        def checked() -> torch.Tensor:
            grad = gradient()
            if not bool(torch.isfinite(grad).all()):
                self.nonfinite = True
                point.f = NONFINITE_PENALTY  # no longer acceptable
                return torch.zeros_like(grad)
            return grad

        point = _Point(t, value, None, None, terms, checked, d)
        self.last = point
        if not self.variant.lazy_gradients:
            point.gtd  # noqa: B018  (computes the gradient now)
        return point

    def state(self, k: int, f: float, g: torch.Tensor, converged: bool = False) -> OptimizerState:
        run = self.run
        return OptimizerState("lbfgs", k, run.evaluate.count, run.x.view(-1), f, g,
                              self.memory.state(), converged, run.reference,
                              tuple(run.recent))  # fmt: skip

    def solve(self, iterations: int, resume: OptimizerState | None = None) -> tuple[float, str]:
        run = self.run
        flat = run.x.view(-1)
        if resume is None:
            f, g, terms = run.evaluate(flat)
            if not _finite(f, g):
                raise run.diverged()
            k = 0
            run.report(0, f, terms, functools.partial(self.state, 0, f, g))
        else:  # the state after iteration k, as it was saved
            k, f, g = resume.iteration, resume.loss, resume.grad.view(-1).to(flat)
            run.evaluate.count = resume.evaluations
            run.iteration = k
            self.memory.restore(resume.memory, g)
            run.state = functools.partial(self.state, k, f, g, resume.converged)
            if resume.converged:
                return f, "converged"
            if run.still():
                return f, "settled"
        if k >= iterations:
            return f, "completed"
        # the first step of a run is steepest descent scaled to move a pixel; later ones
        # follow the history (a resumed run's history gives the same direction again)
        d, t = (g.neg(), self.first_step(g)) if k == 0 else (self.memory.direction(g), self.lr)
        restarted = False
        while k < iterations:
            if run.stop():
                return f, "cancelled"
            gtd = float(g.dot(d))
            if gtd > -DESCENT_TOL * max(1.0, abs(f)):
                if restarted or not len(self.memory):
                    return f, "converged"
                d, t, restarted = g.neg(), self.first_step(g), True  # not a descent direction
                self.memory.clear()
                continue
            self.nonfinite = False
            start = _Point(0.0, f, g, gtd, None)
            found = line_search(functools.partial(self._at, flat, d), start, t, d)
            if self.last is not None and self.last is not found:
                self.last.release()  # a rejected trial's graph is not kept past its search
            if found is None or found.f >= f:
                # no acceptable point on this line
                if restarted or not len(self.memory):
                    if self.nonfinite:
                        raise run.diverged()
                    return f, "converged"
                # forget the curvature pairs and try steepest descent once more
                d, t, restarted = g.neg(), self.first_step(g), True
                self.memory.clear()
                continue
            restarted = False
            k += 1
            step = d.mul(found.t)
            run.updating()
            flat.add_(step)
            self.memory.push(step, found.g - g, found.g)
            change = abs(found.f - f)
            f, g = found.f, found.g
            assert found.terms is not None
            converged = change <= LOSS_CHANGE_TOL * max(1.0, abs(f)) or (
                float(step.abs().max()) <= PIXEL_STEP_TOL
            )
            settled = run.settled(k)
            run.report(k, f, found.terms, functools.partial(self.state, k, f, g, converged))
            if converged:
                return f, "converged"
            if settled:
                return f, "settled"
            d = self.memory.direction(g)
            t = self.lr
        return f, "completed"


def _quadratic_min(a: _Point, b: _Point, lo: float, hi: float) -> float:
    """The minimiser of the parabola through a (value and slope) and b (value only), kept
    inside [lo, hi]: the interpolation for a trial whose gradient was not computed."""
    delta = b.t - a.t
    curve = b.f - a.f - a.gtd * delta
    if delta == 0 or curve <= 0 or not math.isfinite(curve):
        return (lo + hi) / 2
    t = a.t - a.gtd * delta * delta / (2 * curve)
    if not math.isfinite(t):
        return (lo + hi) / 2
    return min(max(t, lo), hi)


def _cubic_min(a: _Point, b: _Point, lo: float, hi: float) -> float:
    """The minimiser of the cubic through two points with slopes, kept inside [lo, hi]
    (the parabola when b's slope is not known)."""
    if not b.has_grad:
        return _quadratic_min(a, b, lo, hi)
    if a.t == b.t:
        return (lo + hi) / 2
    d1 = a.gtd + b.gtd - 3 * (a.f - b.f) / (a.t - b.t)
    disc = d1 * d1 - a.gtd * b.gtd
    if disc < 0 or not math.isfinite(disc):
        return (lo + hi) / 2
    d2 = math.copysign(math.sqrt(disc), b.t - a.t)
    denom = b.gtd - a.gtd + 2 * d2
    if denom == 0:
        return (lo + hi) / 2
    t = b.t - (b.t - a.t) * (b.gtd + d2 - d1) / denom
    if not math.isfinite(t):
        return (lo + hi) / 2
    return min(max(t, lo), hi)


def line_search(
    phi: Callable[[float], _Point],
    start: _Point,
    t: float,
    d: torch.Tensor,
    c1: float = ARMIJO_C1,
    c2: float = CURVATURE_C2,
    max_evaluations: int = MAX_LINE_EVALUATIONS,
) -> _Point | None:
    """A step along ``d`` meeting the strong Wolfe conditions, trying ``t`` first.

    Returns the point found (at worst the lowest point satisfying sufficient decrease),
    or None when no point lowered the loss enough.
    """
    f0, gtd0 = start.f, start.gtd
    d_max = float(d.abs().max())
    evaluations = 0

    def armijo(p: _Point) -> bool:
        return p.f <= f0 + c1 * p.t * gtd0

    def curvature(p: _Point) -> bool:
        return abs(p.gtd) <= -c2 * gtd0

    def zoom(lo: _Point, hi: _Point) -> _Point | None:
        nonlocal evaluations
        while evaluations < max_evaluations:
            width = abs(hi.t - lo.t)
            if width * d_max < BRACKET_TOL:
                break
            left, right = min(lo.t, hi.t), max(lo.t, hi.t)
            margin = 0.1 * width  # stay clear of the ends, or the bracket barely shrinks
            trial = _cubic_min(lo, hi, left + margin, right - margin)
            p = phi(trial)
            evaluations += 1
            if p.f == lo.f:
                # the loss cannot tell the two apart: the bracket is below its resolution
                # (bf16 rounds a step of ~1e-5 levels away), and narrower trials only
                # repeat the value (~20 evaluations per search at the end of a run)
                break
            if not armijo(p) or p.f >= lo.f:
                hi = p
            else:
                if curvature(p):
                    return p
                if p.gtd * (hi.t - lo.t) >= 0:
                    hi = lo
                lo = p
        return lo if lo.t > 0 else None

    prev, cur = start, phi(t)
    evaluations += 1
    while True:
        if not armijo(cur) or (prev.t > 0 and cur.f >= prev.f):
            return zoom(prev, cur)
        if curvature(cur):
            return cur
        if cur.gtd >= 0:
            return zoom(cur, prev)
        if evaluations >= max_evaluations:
            return cur
        # still descending: extrapolate (between a little and ten times further)
        nxt = _cubic_min(prev, cur, cur.t + 0.01 * (cur.t - prev.t), cur.t * 10)
        prev, cur = cur, phi(nxt)
        evaluations += 1


# -- Adam ------------------------------------------------------------------------------------
def _adam(
    run: _Run,
    iterations: int,
    lr: float,
    clamp: tuple[float, float] | None,
    resume: OptimizerState | None = None,
    after_step: Projection | None = None,
) -> tuple[float, str]:
    flat = run.x.view(-1)
    param = torch.nn.Parameter(flat.detach().clone())
    opt = torch.optim.Adam([param], lr=lr)

    def state(k: int, f: float, g: torch.Tensor) -> OptimizerState:
        return OptimizerState("adam", k, run.evaluate.count, flat, f, g,
                              {"kind": "adam", "torch": opt.state_dict()},
                              reference=run.reference, recent=tuple(run.recent))  # fmt: skip

    if resume is None:
        f, g, terms = run.evaluate(param.data)
        if not _finite(f, g):
            raise run.diverged()
        first = 1
        run.report(0, f, terms, functools.partial(state, 0, f, g))
    else:
        f, g = resume.loss, resume.grad.view(-1).to(flat)
        opt.load_state_dict(resume.memory["torch"])
        run.evaluate.count = resume.evaluations
        run.iteration = first = resume.iteration
        run.state = functools.partial(state, first, f, g)
        if run.still():
            return f, "settled"
        first += 1
    for k in range(first, iterations + 1):
        if run.stop():
            return f, "cancelled"
        run.updating()
        param.grad = g.view_as(param)
        opt.step()
        if clamp is not None:
            param.data.clamp_(*clamp)
        if after_step is not None:
            shape = run.x.shape
            param.data.copy_(after_step(param.data.view(shape), g.view(shape)).reshape(-1))
        f_new, g_new, terms = run.evaluate(param.data)
        if not _finite(f_new, g_new):
            raise run.diverged()
        flat.copy_(param.data)
        f, g = f_new, g_new
        settled = run.settled(k)
        run.report(k, f, terms, functools.partial(state, k, f, g))
        if settled:
            return f, "settled"
    return f, "completed"
