"""What the server knows of its own speed: seconds per iteration per megapixel, from its
recent runs (or its start-up test run), each kept with how busy the machine was while it
ran (:mod:`nst.load`: the cores other programs wanted).

An estimate multiplies that speed by the work asked for and adds the wait for the runs
queued before it. The load's effect is learnt, not assumed: once the recent runs were
measured at loads at least half a core apart, the speed is fitted as a straight line of
the load (never faster when busier) and read at the load now; until then it is their
median. Once the runs vary, the estimate is a range (their slowest and fastest, or the
line's). Speeds are kept by the run's kind (its style loss: an iteration of ``w2`` costs
1.1-2x one of ``gram``, by the size and the CPU); a kind not yet measured takes every
kind's. The speeds outlive their runs: they are kept in the data folder
(``speeds.json``), so deleting runs or restarting keeps them.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError
from ..imageio import atomic_write
from .settings import FILE_MODE

#: runs of one kind whose speeds make the estimate (and of all kinds, kept)
RECENT_RUNS = 8
KEPT_RUNS = 32
#: where the recent runs' speeds are kept (in the data folder)
SPEEDS = "speeds.json"
#: the recent runs' speeds vary when the slowest and the fastest are this far apart
#: (relative to the median): the estimate is then a range
VARIES = 0.15
#: runs measured at loads this far apart (cores) teach the load's effect
SPREAD = 0.5
log = logging.getLogger("nst.web")


@dataclass(frozen=True)
class Speed:
    """Seconds per iteration per megapixel at the load asked about: the estimate and its
    range, what measured it ("runs" or "calibration"), how much slower than at no load
    the runs taught it to be (1: not learnt, or not slower), and the share of their
    iterations the runs made (a run that converges stops early: the default run at 256 px
    stopped at 252 of 300)."""

    median: float
    low: float
    high: float
    basis: str
    slowdown: float = 1.0
    share: float = 1.0  # the share of their iterations the runs made (median)

    @property
    def varies(self) -> bool:
        return self.high - self.low > VARIES * self.median


@dataclass(frozen=True)
class Measured:
    """One run: when it finished, its seconds per iteration per megapixel, its kind (the
    style loss), the cores other programs wanted while it ran, and the share of its
    iterations it made."""

    at: float
    speed: float
    kind: str = ""
    busy: float = 0.0
    share: float = 1.0

    def to_json(self) -> list[object]:
        return [self.at, self.speed, self.kind, round(self.busy, 3), round(self.share, 4)]

    @classmethod
    def from_json(cls, row: list[object]) -> Measured:
        at, speed = float(row[0]), float(row[1])  # type: ignore[arg-type]
        kind = str(row[2]) if len(row) > 2 else ""
        busy = float(row[3]) if len(row) > 3 else 0.0  # type: ignore[arg-type]
        share = float(row[4]) if len(row) > 4 else 1.0  # type: ignore[arg-type]
        if not speed > 0 or not busy >= 0 or not 0 < share <= 1:
            raise ValueError("not a speed")
        return cls(at, speed, kind, busy, share)


def fitted(runs: list[Measured], busy: float) -> Speed:
    """The runs' speed at load ``busy``: their median, or, once they were measured at
    loads :data:`SPREAD` apart, the least-squares line of speed on load (slope >= 0) read
    at ``busy`` (within the loads seen, plus one core)."""
    speeds = sorted(r.speed for r in runs)
    loads = [r.busy for r in runs]
    shares = sorted(r.share for r in runs)
    share = shares[len(shares) // 2]
    if max(loads) - min(loads) < SPREAD:
        return Speed(speeds[len(speeds) // 2], speeds[0], speeds[-1], "runs", 1.0, share)
    n = len(runs)
    mean_b, mean_v = sum(loads) / n, sum(speeds) / n
    cov = sum((r.busy - mean_b) * (r.speed - mean_v) for r in runs)
    var = sum((b - mean_b) ** 2 for b in loads)
    slope = max(0.0, cov / var)
    at_zero = max(min(speeds) * 0.5, mean_v - slope * mean_b)
    at = min(max(busy, 0.0), max(loads) + 1.0)
    value = at_zero + slope * at
    ratios = [r.speed / (at_zero + slope * r.busy) for r in runs]
    return Speed(value, value * min(ratios), value * max(ratios), "runs", value / at_zero, share)


class SpeedBook:
    """The measured speeds of one server (its own lock; the file in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / SPEEDS
        self.lock = threading.Lock()
        self.runs: list[Measured] = []  # the recent runs, oldest first
        self.calibrated: float | None = None  # the start-up test run's

    def restore(self, ran: list[Measured]) -> None:
        """The speeds kept on disk; without that file (a data folder of an older
        version), ``ran``: the restored runs' own speeds."""
        try:
            kept = [Measured.from_json(row) for row in json.loads(self.file.read_text())]
        except (OSError, ValueError, TypeError, IndexError):
            kept = sorted(ran, key=lambda m: m.at)
        with self.lock:
            self.runs = kept[-KEPT_RUNS:]

    def keep(self, run: Measured) -> None:
        """A finished run's speed among the recent ones (and on disk)."""
        with self.lock:
            self.runs = [*self.runs, run][-KEPT_RUNS:]
            data = json.dumps([r.to_json() for r in self.runs]).encode()
        try:
            atomic_write(self.file, lambda f: f.write(data), FILE_MODE)
        except ImageError:
            log.warning("could not keep the measured speed")

    def calibrate(self, speed: float) -> None:
        """The start-up test run's speed (measured on a quiet machine)."""
        with self.lock:
            self.calibrated = speed

    @property
    def has_runs(self) -> bool:
        with self.lock:
            return bool(self.runs)

    def speed(self, kind: str = "", busy: float = 0.0) -> Speed | None:
        """The speed at load ``busy`` from the recent runs of ``kind`` (deleted ones too;
        of every kind while none of it was measured), else the start-up test run, else
        None."""
        with self.lock:
            same = [r for r in self.runs if r.kind == kind] or self.runs
            recent = same[-RECENT_RUNS:]
            calibrated = self.calibrated
        if recent:
            return fitted(recent, busy)
        if calibrated is not None:
            return Speed(calibrated, calibrated, calibrated, "calibration")
        return None
