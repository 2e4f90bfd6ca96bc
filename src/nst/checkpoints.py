"""Checkpoints of a long run on disk: the work folder ``OUT.work/`` beside the output.

A run writes its whole state (:class:`nst.execution.RunState`) there at most every
``every`` seconds, at every coarse-to-fine stage boundary and when it is interrupted;
given again after any stop (SIGKILL, out of memory, a reboot), the same command continues
from the newest valid checkpoint and makes the picture the uninterrupted run makes.

* Two generations (``checkpoint-0.nst``, ``checkpoint-1.nst``), each written to a
  temporary file, fsynced and renamed over the older one: a kill during a write loses at
  most one interval.
* A file is a header line (JSON: format, nst version, when it was saved, the run's
  fingerprint, the state's plain values with its tensors listed by dtype, shape and
  offset), the tensors' raw bytes as the optimizer holds them (no serialization copy),
  and a trailer with the bytes' length and CRC-32. A cut, altered or foreign file is
  named in one line and the other generation used; nothing in a file is ever executed.
* The fingerprint is the settings that make the picture and the bytes of every input
  file: a checkpoint of another command for the same output is refused, naming what
  differs, until ``--restart``.
* ``last`` holds the newest iteration reached (rewritten at most once a second), so a
  continued run can say how long before the stop its checkpoint was saved.

The states are written as the optimizer holds them (the L-BFGS buffers' filled rows, the
small matrices), with no conversion.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__, builtins
from .errors import ConfigError, one_line
from .events import Stage
from .execution import RunState
from .optimize import OptimizerState

MAGIC = b"NSTCKPT2\n"
#: the layout of the payload; a checkpoint of another format is refused as foreign
FORMAT = 2
GENERATIONS = ("checkpoint-0.nst", "checkpoint-1.nst")
#: the heartbeat file is rewritten at most this often (seconds)
BEAT_EVERY = 1.0


def work_folder(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output ``OUT``."""
    out = Path(output)
    return out.with_name(out.name + ".work")


def parse_every(text: str) -> float | None:
    """``--checkpoint-every``: seconds (0: after every iteration) or ``none`` (never)."""
    t = str(text).strip().lower()
    if t in ("none", "never", "off"):
        return None
    try:
        value = float(t)
    except ValueError:
        raise ConfigError(
            f"checkpoint-every: {one_line(str(text))[:40]!r} is not a number of seconds or none",
            option="checkpoint_every",
        ) from None
    if not 0 <= value <= 1e7:
        raise ConfigError(
            f"checkpoint-every: give 0 to 10000000 seconds, or none (got {value:g})",
            option="checkpoint_every",
        )
    return value


# -- the fingerprint ---------------------------------------------------------------------
def file_identity(path: str) -> dict[str, Any]:
    """What identifies an input: a built-in by its name, a file by its size and bytes."""
    if builtins.is_builtin(path):
        return {"builtin": path}
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def fingerprint(settings: Mapping[str, Any], inputs: Mapping[str, str]) -> dict[str, Any]:
    """The settings (JSON values) and the inputs (role -> path) a run's picture depends on."""
    return {
        "settings": dict(settings),
        "inputs": {role: {"path": p, **file_identity(p)} for role, p in inputs.items()},
    }


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words: ``iterations (500 there, 300 now)``,
    ``content photo.jpg changed``."""
    out: list[str] = []
    a, b = old.get("settings", {}), new.get("settings", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            there, now = a.get(key, "default"), b.get(key, "default")
            out.append(f"{key} ({_short(there)} there, {_short(now)} now)")
    ia, ib = old.get("inputs", {}), new.get("inputs", {})
    for role in sorted(set(ia) | set(ib)):
        x, y = ia.get(role), ib.get(role)
        if x is None or y is None:
            out.append(f"{role} ({'none' if x is None else x['path']} there, "
                       f"{'none' if y is None else y['path']} now)")  # fmt: skip
        elif {k: v for k, v in x.items() if k != "path"} != {
            k: v for k, v in y.items() if k != "path"
        }:
            same_name = x["path"] == y["path"]
            out.append(f"{role} {y['path']} changed since the checkpoint" if same_name
                       else f"{role} ({x['path']} there, {y['path']} now)")  # fmt: skip
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return one_line(text if len(text) <= 40 else text[:37] + "...")


# -- the state as plain values and tensors --------------------------------------------------
def _to_plain(state: RunState) -> dict[str, Any]:
    opt = state.optimizer
    return {
        "stage": state.stage,
        "seed": state.seed,
        "stages": [dataclasses.asdict(s) for s in state.stages],
        "optimizer": None if opt is None else {
            "method": opt.method, "iteration": opt.iteration, "evaluations": opt.evaluations,
            "x": opt.x, "loss": opt.loss, "grad": opt.grad, "memory": opt.memory,
            "converged": opt.converged, "reference": opt.reference,
            "recent": list(opt.recent),
        },
        "x": state.x,
        "average": None if state.average is None else list(state.average),
        "generators": dict(state.generators),
        "iterations": state.iterations,
        "evaluations": state.evaluations,
        "elapsed": state.elapsed,
    }  # fmt: skip


def _from_plain(data: dict[str, Any]) -> RunState:
    opt = data["optimizer"]
    optimizer = None
    if opt is not None:  # "reference", "recent": none in a checkpoint of an earlier version
        optimizer = OptimizerState(**{**opt, "reference": opt.get("reference"),
                                      "recent": tuple(opt.get("recent", ()))})  # fmt: skip
    average = data["average"]
    return RunState(
        stage=int(data["stage"]),
        seed=int(data["seed"]),
        stages=tuple(Stage(**s) for s in data["stages"]),
        optimizer=optimizer,
        x=data["x"],
        average=None if average is None else (average[0], int(average[1])),
        generators=dict(data["generators"]),
        iterations=int(data["iterations"]),
        evaluations=int(data["evaluations"]),
        elapsed=float(data["elapsed"]),
    )


@dataclass(frozen=True)
class Saved:
    """A checkpoint read back: the state, when it was saved, and its header."""

    state: RunState
    saved_at: float
    sequence: int
    fingerprint: dict[str, Any]


class Damaged(Exception):
    """A checkpoint that cannot be used; the message says why, in a few words."""


def _skeleton(value: Any, tensors: list[torch.Tensor]) -> Any:
    """``value`` as JSON, each tensor replaced by its place in ``tensors``; dicts with keys
    that are not strings (Adam's state by parameter number) kept as pairs."""
    if isinstance(value, torch.Tensor):
        tensors.append(value)
        return {"@tensor": len(tensors) - 1}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("@") for k in value):
            return {k: _skeleton(v, tensors) for k, v in value.items()}
        return {"@pairs": [[_skeleton(k, tensors), _skeleton(v, tensors)]
                           for k, v in value.items()]}  # fmt: skip
    if isinstance(value, (list, tuple)):
        return [_skeleton(v, tensors) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a checkpoint cannot hold {type(value).__name__}")


def _flesh(value: Any, tensors: list[torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "@tensor" in value:
            return tensors[int(value["@tensor"])]
        if "@pairs" in value:
            return {_flesh(k, tensors): _flesh(v, tensors) for k, v in value["@pairs"]}
        return {k: _flesh(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_flesh(v, tensors) for v in value]
    return value


def _raw(t: torch.Tensor) -> memoryview:
    """A tensor's bytes without a copy (one is made only for a non-contiguous view)."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data


_DTYPES = {str(d): d for d in (torch.float64, torch.float32, torch.bfloat16, torch.float16,
                               torch.int64, torch.int32, torch.uint8, torch.bool)}  # fmt: skip


def read(path: Path) -> Saved:
    """One checkpoint file, checked: magic, header, version, length and CRC-32.

    Each tensor is read into its own new allocation (aligned as the run's own tensors are),
    not viewed inside the file's bytes at whatever offset the header left it: a vectorized
    dot product rounds by its operands' alignment, and a run continued from misaligned
    copies drifted from the run it continues (the last bits of a line search's slope)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(MAGIC)) != MAGIC:
                raise Damaged("not an nst checkpoint")
            line = f.readline(size)
            header = _header(line)
            if header.get("format") != FORMAT or header.get("nst") != __version__:
                raise Damaged(f"from another version of nst ({_short(header.get('nst', '?'))})")
            start = len(MAGIC) + len(line)
            length = header.get("length")
            if not isinstance(length, int) or length < 0:
                raise Damaged("its header is damaged")
            whole = length + len(f"END {length} 00000000\n")  # the tensors and the trailer
            if size - start < whole:
                raise Damaged(f"cut short ({size - start} of {whole} bytes)")
            blobs, crc = _payload(f, header["tensors"], length)
            trailer = f.read()
    except OSError as exc:
        raise Damaged(f"cannot be read ({exc.strerror})") from None
    if trailer != f"END {length} {crc:08x}\n".encode():
        raise Damaged("its checksum does not match")
    try:
        tensors = [blob.view(_DTYPES[spec["dtype"]]).reshape(spec["shape"])
                   for blob, spec in zip(blobs, header["tensors"])]  # fmt: skip
        state = _from_plain(_flesh(header["state"], tensors))
    except Exception as exc:  # a header that checks out but does not describe a state
        raise Damaged(f"unreadable ({type(exc).__name__})") from None
    return Saved(state, float(header["saved_at"]), int(header["sequence"]),
                 header["fingerprint"])  # fmt: skip


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line) if line.endswith(b"\n") else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("tensors"), list):
        raise Damaged("its header is damaged")
    return header


def _payload(f: Any, specs: list[Any], length: int) -> tuple[list[torch.Tensor], int]:
    """The tensors' bytes, each read into a new buffer, and their CRC-32; the specs must
    tile the payload in order (as :meth:`WorkFolder.save` writes them)."""
    blobs, crc, offset = [], 0, 0
    for spec in specs:
        try:
            nbytes, at = int(spec["nbytes"]), int(spec["offset"])
            if spec["dtype"] not in _DTYPES:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise Damaged("its header is damaged") from None
        if at != offset or nbytes < 0 or offset + nbytes > length:
            raise Damaged("its header is damaged")
        blob = torch.empty(nbytes, dtype=torch.uint8)
        if nbytes:
            view = blob.numpy().data
            if f.readinto(view) != nbytes:
                raise Damaged("cut short")
            crc = zlib.crc32(view, crc)
        blobs.append(blob)
        offset += nbytes
    if offset != length:
        raise Damaged("its header is damaged")
    return blobs, crc


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Loaded:
    """What a work folder holds for this run: the state to continue from (None: start
    afresh), when it was saved and when the run last reported, and what was wrong."""

    state: RunState | None = None
    saved_at: float = 0.0
    last_seen: float | None = None
    notes: list[str] = field(default_factory=list)


class WorkFolder:
    """The checkpoints of one output (:func:`work_folder`), the :class:`Checkpointer` of
    a run: a state is ``due`` every ``every`` seconds (0: every iteration; None: never,
    though stage boundaries and interrupts still save)."""

    def __init__(
        self,
        output: str | os.PathLike[str],
        fingerprint: Mapping[str, Any],
        every: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = work_folder(output)
        self.fingerprint = dict(fingerprint)
        self.every = every
        self.clock = clock
        self.on_error = on_error
        self.last_save = clock()
        self.last_beat = -float("inf")
        self.sequence = 0
        self.broken = False
        #: bytes of the newest checkpoint written (what a checkpoint costs)
        self.written = 0
        #: where the newest checkpoint goes on from, in words (None: none written yet)
        self.last_saved: str | None = None
        self.saves = 0
        self.seconds = 0.0

    # -- reading ---------------------------------------------------------------------------
    def load(self) -> Loaded:
        """The newest valid checkpoint of this run. A damaged one is named in ``notes`` and
        the other used; both damaged: start afresh (said). A valid checkpoint of other
        settings or inputs is refused (ConfigError naming the differences)."""
        out = Loaded()
        if not self.path.is_dir():
            return out
        found: list[Saved] = []
        for name in GENERATIONS:
            file = self.path / name
            if not file.exists():
                continue
            try:
                found.append(read(file))
            except Damaged as exc:
                out.notes.append(f"{file}: {exc}")
        if not found:
            if out.notes:
                out.notes.append("no usable checkpoint: starting afresh")
            return out
        newest = max(found, key=lambda s: s.sequence)
        if len(found) == 1 and out.notes:
            out.notes[-1] += "; using the other checkpoint"
        differ = differences(newest.fingerprint, self.fingerprint)
        if differ:
            raise ConfigError(
                f"{self.path} holds a run with other settings: {'; '.join(differ)}; run "
                "the same command to continue it, or add --restart to discard it"
            )
        self.sequence = newest.sequence
        out.state, out.saved_at = newest.state, newest.saved_at
        out.last_seen = self._last_seen()
        return out

    def continued(self) -> RunState | None:
        """The state to go on from when the folder holds this run's valid checkpoint;
        otherwise (none, damaged, another run's) the folder is emptied and the run starts
        afresh (for front ends with nobody to ask: the web's jobs, batch's)."""
        try:
            state = self.load().state
        except ConfigError:
            state = None
        if state is None:
            self.discard()
        return state

    def _last_seen(self) -> float | None:
        try:
            return float(json.loads((self.path / "last").read_text())["time"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- writing (the Checkpointer) ----------------------------------------------------------
    def due(self) -> bool:
        now = self.clock()
        if now - self.last_beat >= BEAT_EVERY:
            self.last_beat = now
            self._beat()
        if self.every is None or self.broken:
            return False
        return now - self.last_save >= self.every

    def _beat(self) -> None:
        if self.broken or not self.path.is_dir():
            return
        with contextlib.suppress(OSError):
            (self.path / "last").write_text(json.dumps({"time": time.time()}))

    def save(self, state: RunState) -> None:
        """Write ``state`` over the older generation (temp file, fsync, rename). A folder
        that cannot be written warns once (``on_error``) and the run goes on without."""
        if self.broken or self.every is None:
            return
        started = time.perf_counter()
        tensors: list[torch.Tensor] = []
        skeleton = _skeleton(_to_plain(state), tensors)
        views = [_raw(t) for t in tensors]
        specs, offset = [], 0
        for t, v in zip(tensors, views):
            specs.append({"dtype": str(t.dtype), "shape": list(t.shape), "offset": offset,
                          "nbytes": v.nbytes})  # fmt: skip
            offset += v.nbytes
        self.sequence += 1
        header = {
            "format": FORMAT, "nst": __version__, "saved_at": time.time(),
            "sequence": self.sequence, "stage": state.stage, "iteration": state.iteration,
            "fingerprint": self.fingerprint, "length": offset, "tensors": specs,
            "state": skeleton,
        }  # fmt: skip
        target = self.path / GENERATIONS[self.sequence % 2]
        temp = target.with_name(target.name + ".tmp")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as f:
                f.write(MAGIC + json.dumps(header).encode() + b"\n")
                crc = 0
                for v in views:  # the tensors' own bytes, no copy
                    f.write(v)
                    crc = zlib.crc32(v, crc)
                f.write(f"END {offset} {crc:08x}\n".encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, target)
            _fsync_folder(self.path)
        except OSError as exc:
            self.broken = True
            with contextlib.suppress(OSError):
                temp.unlink()
            if self.on_error is not None:
                self.on_error(
                    f"warning: {self.path}: cannot write a checkpoint ({exc.strerror}); the "
                    "run goes on without them"
                )
            return
        self.last_save = self.clock()
        self.last_saved = where(state, len(state.stages))
        self.written = offset
        self.saves += 1
        self.seconds += time.perf_counter() - started
        self._beat()

    def remove(self) -> None:
        """The run is finished: its checkpoints go."""
        shutil.rmtree(self.path, ignore_errors=True)

    def discard(self) -> None:
        """``--restart``: an earlier run's checkpoints go before this one starts."""
        if self.path.is_dir():
            shutil.rmtree(self.path)


def where(state: RunState, stages: int) -> str:
    """``stage 2, iteration 137`` (``iteration 137`` in a one-stage run; ``the start of
    stage 2`` at a boundary)."""
    if state.optimizer is None:
        return f"the start of stage {state.stage + 1}"
    stage = f"stage {state.stage + 1}, " if stages > 1 else ""
    return f"{stage}iteration {state.iteration}"


def describe(loaded: Loaded, stages: int) -> str:
    """``continuing from stage 2, iteration 137 (saved 40 s before the stop)``."""
    assert loaded.state is not None
    what = where(loaded.state, stages)
    when = ""
    if loaded.last_seen is not None:
        lost = max(0.0, loaded.last_seen - loaded.saved_at)
        when = f" (saved {lost:.0f} s before the stop)"
    return f"continuing from {what}{when}"


def plan_fingerprint(plan: Any, images: Sequence[str]) -> dict[str, Any]:
    """What a checkpoint of ``plan`` (a :class:`nst.planning.Plan`) must match to be
    continued: the kind of run, its settings (those that make the picture), the precision
    it resolved to, the output's size, and the bytes of ``images`` (content then styles,
    or the one image) and of every file the config names."""
    from .runtime import resolve_device, resolve_precision

    c = plan.config
    kind = "texture" if plan.content is None else "content" if not plan.styles else "stylize"
    precision, _ = resolve_precision(c.precision, resolve_device(c.device))
    settings = {"run": kind, **c.identity(), "precision": precision,
                "output": f"{plan.out_size[1]}x{plan.out_size[0]}"}  # fmt: skip
    roles = ["content", "style"] if kind == "stylize" else ["image"]
    named: dict[str, str] = {}
    for k, path in enumerate(images):
        role = roles[min(k, len(roles) - 1)]
        named[role if role not in named else f"{role} {k}"] = path
    named.update(c.input_paths())
    return fingerprint(settings, named)
