"""How busy the machine is: how many cores other programs want, sampled every few
seconds, so that a run computes with the cores the others leave (the web's jobs,
:mod:`nst.web.manager`; the ``nst`` command's runs, :mod:`nst.threads`) and the
server's estimates can tell a speed measured on a busy machine from one measured on a
quiet one (:mod:`nst.web.estimates`).

Every few seconds the sampler reads the CPU time the whole machine spent busy
(``/proc/stat``) and the CPU time of this process (``os.times``). What the others used is
the difference; when the cores were saturated, what they *wanted* is more than they got,
and a fair scheduler gives each runnable thread the same share, so their demand is their
use scaled by ours (``others_used * our_threads / our_used``). Where ``/proc/stat``
cannot be read, the load is 0.

A run computes with the cores the others leave (:func:`threads_for`, checked at its
steps). How much a given load still slows a run is not modelled, so the estimates learn
it from the server's own runs.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: seconds between two samples
EVERY = 2.0
#: seconds over which the current load is averaged (an exponential half-life)
HALF_LIFE = 6.0
#: samples kept to average the load over a run (about an hour at EVERY)
KEPT = 1800
#: above this fraction of the cores in use, the cores count as saturated
SATURATED = 0.85


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds spent busy by the whole machine and by this process, at ``at``
    (monotonic seconds)."""

    at: float
    busy: float
    own: float


def read_times(clock: Callable[[], float]) -> CpuTimes | None:
    """The machine's and this process's CPU seconds now (None without ``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy
    values = [int(v) for v in fields[1:9]] + [0] * max(0, 9 - len(fields))
    busy = sum(values) - values[3] - values[4]
    t = os.times()
    return CpuTimes(clock(), busy / tick, t.user + t.system)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_for(others: float, most: int, n_cores: int, runs: int = 1) -> int:
    """The torch threads one of ``runs`` running jobs computes with: the cores that other
    programs (wanting ``others`` cores) leave, shared by the runs, at most ``most`` and at
    least 1. A thread beyond the free cores waits at every OpenMP barrier for one (one CPU
    hog made a run with 2 threads on 2 cores 2.9x slower in the web and 16.7x in the
    ``nst`` command; with 1 thread it took as long as on a quiet machine: docs/PERFORMANCE.md)."""
    free = n_cores - math.floor(others + 0.5)
    return max(1, min(most, free // max(1, runs)))


@dataclass(frozen=True)
class LoadSample:
    """Over one interval ending at ``at``: the cores other programs wanted."""

    at: float
    others: float


class MachineLoad:
    """The load of the machine, sampled by :meth:`sample` (on the job manager's thread).

    ``reader`` gives CPU times (:func:`read_times`); tests pass their own."""

    def __init__(
        self,
        n_cores: int | None = None,
        reader: Callable[[], CpuTimes | None] | None = None,
        half_life: float = HALF_LIFE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cores = n_cores or cores()
        self.clock = clock
        self.reader = reader or (lambda: read_times(self.clock))
        self.half_life = half_life
        self.lock = threading.Lock()
        self.samples: deque[LoadSample] = deque(maxlen=KEPT)
        self.others = 0.0  # the current demand of other programs (cores), averaged
        self._last: CpuTimes | None = None

    def sample(self, own_threads: float) -> LoadSample | None:
        """Read the CPU times; ``own_threads``: the threads this server's runs wanted over
        the interval (a running job's torch threads; 0 when idle)."""
        now = self.reader()
        if now is None:
            return None
        with self.lock:
            last, self._last = self._last, now
            if last is None or now.at <= last.at:
                return None
            span = now.at - last.at
            own_used = max(0.0, (now.own - last.own) / span)
            others_used = max(0.0, (now.busy - last.busy) / span - own_used)
            others = others_used
            saturated = own_used + others_used >= SATURATED * self.cores
            if saturated and own_threads > 0 and own_used > 0.05:
                others = others_used * own_threads / own_used
            s = LoadSample(now.at, others)
            self.samples.append(s)
            keep = 0.5 ** (span / self.half_life)
            first = len(self.samples) == 1
            self.others = s.others if first else keep * self.others + (1 - keep) * s.others
            return s

    def busy_during(self, start: float, end: float) -> float:
        """The cores other programs wanted on average between ``start`` and ``end``
        (the clock's seconds); the current load for a span shorter than a sample."""
        with self.lock:
            inside = [s.others for s in self.samples if start < s.at <= end + EVERY]
            current = self.others
        return sum(inside) / len(inside) if inside else current

    @property
    def busy(self) -> float:
        """The cores other programs want now (averaged)."""
        with self.lock:
            return self.others
