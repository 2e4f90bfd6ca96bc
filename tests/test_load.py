"""The machine's load as estimates see it: other programs' demand from CPU times, now
and over a run's time."""

from __future__ import annotations

import pytest

from nst.load import CpuTimes, MachineLoad, read_times, threads_for


class Times:
    """CPU times a test feeds the sampler: each ``step`` adds what was used."""

    def __init__(self) -> None:
        self.now = CpuTimes(0.0, 0.0, 0.0)

    def step(self, seconds: float, machine_busy: float, own: float) -> None:
        """``seconds`` pass; the cores were busy ``machine_busy`` on average, ``own`` of
        them this process's."""
        n = self.now
        self.now = CpuTimes(n.at + seconds, n.busy + machine_busy * seconds, n.own + own * seconds)

    def __call__(self) -> CpuTimes:
        return self.now


def sampled(load: MachineLoad, times: Times, steps) -> None:
    load.sample(0)  # the first reading only starts the count
    for seconds, machine_busy, own, threads in steps:
        times.step(seconds, machine_busy, own)
        load.sample(threads)


def test_an_idle_machine_slows_nothing():
    times = Times()
    load = MachineLoad(2, times, half_life=1e-9)
    sampled(load, times, [(2, 0.05, 0.0, 0)])
    assert load.busy == pytest.approx(0.05)


def test_a_cpu_hog_beside_an_idle_server_is_one_core_wanted():
    times = Times()
    load = MachineLoad(2, times, half_life=1e-9)
    sampled(load, times, [(2, 1.0, 0.0, 0)])
    assert load.busy == pytest.approx(1.0)


def test_on_saturated_cores_the_others_demand_is_their_share_scaled_by_ours():
    # our 2 threads and a hog on 2 cores: each gets 2/3 of a core; the hog used 2/3,
    # we used 4/3: what the hog wants is (2/3) * 2 / (4/3) = 1 core
    times = Times()
    load = MachineLoad(2, times, half_life=1e-9)
    sampled(load, times, [(2, 2.0, 4 / 3, 2)])
    assert load.busy == pytest.approx(1.0)


def test_unsaturated_cores_take_what_the_others_used():
    times = Times()
    load = MachineLoad(4, times, half_life=1e-9)
    sampled(load, times, [(2, 2.5, 2.0, 2)])  # 2.5 of 4 cores busy: nobody waits
    assert load.busy == pytest.approx(0.5)


def test_the_current_load_is_averaged_over_its_half_life():
    times = Times()
    load = MachineLoad(2, times, half_life=2.0)
    sampled(load, times, [(2, 0.0, 0.0, 0), (2, 1.0, 0.0, 0)])
    assert load.busy == pytest.approx(0.5)  # one half-life: half way to the new load


def test_the_load_over_a_run_is_the_mean_of_its_samples():
    times = Times()
    load = MachineLoad(2, times, half_life=1e-9)
    # 2 s quiet, then 4 s with a hog, our run of 2 threads going on through both
    sampled(load, times, [(2, 2.0, 2.0, 2), (2, 2.0, 4 / 3, 2), (2, 2.0, 4 / 3, 2)])
    assert load.busy_during(0.0, 6.0) == pytest.approx((0.0 + 1.0 + 1.0) / 3)
    assert load.busy_during(2.0, 6.0) == pytest.approx(1.0)
    # a run shorter than a sample: the load then
    assert load.busy_during(100.0, 100.5) == pytest.approx(1.0)


def test_two_runs_of_the_server_at_once_are_not_other_programs():
    times = Times()
    load = MachineLoad(2, times, half_life=1e-9)
    sampled(load, times, [(2, 2.0, 2.0, 4)])  # two runs of 2 threads: all ours
    assert load.busy == pytest.approx(0.0)


def test_without_cpu_times_the_load_is_none():
    load = MachineLoad(2, lambda: None)
    assert load.sample(2) is None
    assert load.busy == 0.0 and load.busy_during(0.0, 10.0) == 0.0


def test_this_machines_cpu_times_are_read():
    a = read_times(lambda: 1.0)
    if a is None:
        pytest.skip("no /proc/stat here")
    b = a
    while b is not None and b.own < a.own + 0.2:  # this process works 0.2 CPU seconds
        sum(i * i for i in range(20_000))
        b = read_times(lambda: 2.0)
    assert b is not None and b.at == 2.0
    assert b.busy - a.busy >= 0.15  # the machine was busy at least as long (its ticks)


@pytest.mark.parametrize(
    ("others", "most", "n_cores", "runs", "threads"),
    [
        (0.0, 2, 2, 1, 2),  # quiet: every thread
        (0.4, 2, 2, 1, 2),
        (0.5, 2, 2, 1, 1),  # half a core wanted: it is left to them
        (1.0, 2, 2, 1, 1),  # one CPU hog on two cores
        (3.0, 2, 2, 1, 1),  # at least one
        (4.2, 16, 16, 1, 12),
        (0.0, 8, 16, 1, 8),  # never more than the server's own
        (0.0, 16, 16, 2, 8),  # two running jobs share the free cores
        (0.0, 2, 2, 3, 1),
    ],
)
def test_a_job_computes_with_the_cores_other_programs_leave(others, most, n_cores, runs, threads):
    assert threads_for(others, most, n_cores, runs) == threads
