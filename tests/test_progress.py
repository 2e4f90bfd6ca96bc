"""``nst.progress()``: the ready progress display for scripts and notebooks."""

import io

import nst
from nst.events import Finished, Stage, Started, Step


def run_events(stages=((32, 48, 20),)):
    plan = tuple(Stage(h, w, n) for h, w, n in stages)
    for k, s in enumerate(plan):
        yield Started(k, plan, "cpu", "fp32", 3)
        for i in range(s.iterations + 1):
            yield Step(i, i + 1, 10.0 / (i + 1), {"style:conv1_1": 1.0}, {}, {}, 0.1 * i, k)
    yield Finished(sum(s.iterations for s in plan), 99, 0.5, 2.0, "completed")


def test_plain_lines_every_tenth_without_tqdm():
    out = io.StringIO()
    show = nst.progress(out, bar=False)
    for e in run_events():
        show(e)
    lines = out.getvalue().splitlines()
    assert lines[0] == "48x32 px, 20 iterations on cpu (fp32), seed 3"
    assert lines[-1] == "completed: 20 iterations, 99 loss evaluations, loss 0.5, 2.0 s"
    steps = lines[1:-1]
    assert len(steps) == 11 and steps[0].startswith("0/20 loss 10")  # 0, 2, 4, ... 20
    assert steps[-1].startswith("20/20 loss 0.4762, 0 s left")


def test_a_tqdm_bar_follows_the_whole_run():
    out = io.StringIO()
    show = nst.progress(out, bar=True)
    for e in run_events(((16, 24, 4), (32, 48, 2))):
        show(e)
    text = out.getvalue()
    assert "24x16 px, 4 iterations" in text and "stage 2/2: 48x32 px, 2 iterations" in text
    assert "6/6" in text and "loss 5" in text  # one bar over both stages, with the loss
    assert text.rstrip().endswith("completed: 6 iterations, 99 loss evaluations, loss 0.5, 2.0 s")
