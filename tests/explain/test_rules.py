"""The backward rules through a ReLU, on the lecture's worked example, and gradcheck."""

import pytest
import torch
from torch.autograd import gradcheck

from nst.explain import rules
from nst.layers import receptive_box
from nst.model.vgg import build_extractor
from tests.conftest import tiny_weights

FORWARD = torch.tensor([[1.0, -1, 5], [2, -5, -7], [-3, 2, 4]])
UPSTREAM = torch.tensor([[-2.0, 3, -1], [6, -3, 1], [2, -1, 3]])
LECTURE = {
    "gradient": [[-2, 0, -1], [6, 0, 0], [0, -1, 3]],
    "deconvnet": [[0, 3, 0], [6, 0, 1], [2, 0, 3]],
    "guided": [[0, 0, 0], [6, 0, 0], [0, 0, 3]],
}


@pytest.mark.parametrize("method", rules.METHODS)
def test_the_lectures_worked_example(method):
    f = FORWARD.clone().requires_grad_(True)
    out = rules.relu(method)(f)
    assert torch.equal(out, FORWARD.clamp(min=0))  # the forward pass is the ReLU's
    out.backward(UPSTREAM)
    assert f.grad.tolist() == LECTURE[method]


def test_the_ordinary_rule_passes_gradcheck_through_the_network():
    ex = build_extractor(tiny_weights(), ["conv3_1"], channels_last=False, dtype=torch.float64)
    ex.in_scale.data = ex.in_scale.double()
    ex.in_shift.data = ex.in_shift.double()
    relu = rules.relu("gradient")
    x = (
        torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        * 255
    ).requires_grad_(True)

    def value(img):
        return ex(img, ["conv3_1"], relu=relu)["conv3_1"][0, 2].sum()

    assert gradcheck(value, (x,), eps=1e-4, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("method", rules.METHODS)
@pytest.mark.parametrize(("layer", "row", "col"), [("conv2_2", 3, 5), ("conv3_1", 2, 1),
                                                   ("pool3", 1, 2)])  # fmt: skip
def test_a_neurons_gradient_is_zero_outside_its_receptive_field(pooling, method, layer, row, col):
    size = (80, 96)
    ex = build_extractor(tiny_weights(), ["pool5"], pooling=pooling, channels_last=False,
                         dtype=torch.float64)  # fmt: skip
    ex.in_scale.data = ex.in_scale.double()
    ex.in_shift.data = ex.in_shift.double()
    x = (
        torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        * 255
    ).requires_grad_(True)
    feats = ex(x, [layer], relu=rules.relu(method))[layer]
    channel = int(torch.argmax(feats[0, :, row, col]))  # one that fires there
    (grad,) = torch.autograd.grad(feats[0, channel, row, col], x)
    top, left, bottom, right = receptive_box(layer, row, col, size)
    inside = torch.zeros(size, dtype=torch.bool)
    inside[top : bottom + 1, left : right + 1] = True
    g = grad[0].abs().sum(dim=0)
    assert bool((~inside).any())
    assert float(g[~inside].max()) == 0.0  # exactly zero outside
    assert float(g[inside].max()) > 0.0
    if method == "deconvnet" and pooling == "avg":  # nothing masks the way back: the box is tight
        assert g[top].max() > 0 and g[bottom].max() > 0
        assert g[:, left].max() > 0 and g[:, right].max() > 0


def test_the_redirected_relu_wakes_a_silent_unit_whichever_way_the_loss_points():
    """Gradient ascent on f and descent on -f both let the gradient through a silent unit
    exactly where a step would switch it on (the optimizer minimises -f: ``minimised``)."""
    from nst.explain import rules

    for minimised, sign in ((False, 1.0), (True, -1.0)):
        x = torch.tensor([-1.0, 2.0], requires_grad=True)
        (sign * rules.redirected(minimised)(x).sum()).backward()
        assert x.grad.tolist() == [sign, sign]  # the silent unit too: the step wakes it
        x = torch.tensor([-1.0, 2.0], requires_grad=True)
        (-sign * rules.redirected(minimised)(x).sum()).backward()
        assert x.grad.tolist() == [0.0, -sign]  # a step that would silence it more: blocked
