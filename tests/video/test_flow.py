"""Optical flow, warping, the reliability mask and the temporal loss, against known motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import assert_close, picture

pytest.importorskip("cv2", reason="make test installs nst[video]")

from nst.video import flow as flowlib
from nst.video.sample import sample_frames
from nst.video.temporal import Earlier, TemporalLoss, warp_earlier


def test_warp_by_a_whole_pixel_shift_is_exact():
    img = picture(40, 30, 3).astype(np.float32)
    f = np.zeros((30, 40, 2), np.float32)
    f[..., 0] = 2.0  # out(p) = img(p + (2, 0))
    out = flowlib.warp(img, f)
    assert np.array_equal(out[:, :-2], img[:, 2:])
    assert np.array_equal(out[:, -2:], np.repeat(img[:, -1:], 2, axis=1))  # edge repeated


def test_flow_of_a_panned_photo_is_the_pan():
    frames = sample_frames(96, 72, 3, pan=2.0, zoom=0.0, square=0.0)
    backward = flowlib.flow(frames[2], frames[1])  # frame 2's pixels are 2 px right in 1
    inner = backward[8:-8, 8:-8]
    assert abs(float(np.median(inner[..., 0])) - 2.0) < 0.25
    assert abs(float(np.median(inner[..., 1]))) < 0.25


def test_reliability_marks_the_squares_trail_and_the_edge_leaving_the_frame():
    w, h, t, speed = 64, 48, 3, 3.0
    frames = sample_frames(w, h, 5, pan=1.5, zoom=0.0, square=speed)
    _, c = flowlib.flows(frames[t], frames[t - 1])
    side = h // 5
    x_now, y_now = round(w * 0.7 - speed * t), round(h * 0.3 + 0.3 * speed * t)
    x_was, y_was = round(w * 0.7 - speed * (t - 1)), round(h * 0.3 + 0.3 * speed * (t - 1))
    trail = np.zeros((h, w), bool)
    trail[y_was : y_was + side, x_was : x_was + side] = True
    trail[y_now : y_now + side, x_now : x_now + side] = False
    assert trail.sum() > 20
    assert (c[trail] < 0.5).mean() >= 0.6  # the uncovered background is not trusted
    far = np.ones((h, w), bool)
    far[max(0, y_now - 6) : y_was + side + 6, max(0, x_now - 6) : x_was + side + 6] = False
    far[:, -4:] = False
    far[:4], far[-4:], far[:, :4] = False, False, False
    assert (c[far] > 0.5).mean() > 0.95  # the panned background is trusted
    assert (c[:, -1] < 0.5).all()  # the right edge came from outside the previous frame


def test_reliability_thresholds_by_hand():
    """One pixel whose round trip misses by more than the threshold, one just under."""
    h, w = 9, 9
    back = np.full((h, w, 2), 0.0, np.float32)
    back[..., 0] = 1.0
    fwd = np.full((h, w, 2), 0.0, np.float32)
    fwd[..., 0] = -1.0  # consistent: |w~ + w^|^2 = 0
    c = flowlib.reliability(back, fwd, blur=False)
    assert c[:, :-1].min() == 1.0 and c[:, -1].max() == 0.0  # last column leaves the frame
    # a round trip missing by d: unreliable iff d^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5
    for d, expect in ((0.72, 1.0), (0.73, 0.0)):
        f2 = fwd.copy()
        f2[..., 1] = d
        bound = 0.01 * (1.0 + 1.0 + d * d) + 0.5
        assert (d * d > bound) == (expect == 0.0)
        assert flowlib.reliability(back, f2, blur=False)[4, 4] == expect


def test_temporal_loss_value_and_gradient():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64) * 255
    weights = torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)
    x = (torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64) * 255).requires_grad_()
    loss = TemporalLoss(target, weights).double()
    loss.target, loss.weights = target, weights
    expected = float((weights * (x.detach() - target) ** 2).sum() / x.numel())
    assert_close(loss(x).item(), expected, 1e-9, "temporal loss")
    assert torch.autograd.gradcheck(loss, (x,))


def test_long_term_weights_closest_first():
    frames = sample_frames(64, 48, 6, pan=1.0, zoom=0.0, square=3.0)
    earlier = [Earlier(k, frames[5 - k], frames[5 - k]) for k in (1, 2, 4)]
    warped = warp_earlier(frames[5], earlier, "dis")
    assert [w.offset for w in warped] == [1, 2, 4]
    total = sum(w.weights for w in warped)
    assert total.max() <= 1.0 + 1e-6  # a pixel is never counted twice
    # where the previous frame is reliable, the farther ones get nothing
    sure = warped[0].weights == 1.0
    assert sure.mean() > 0.6
    assert warped[1].weights[sure].max() == 0.0 and warped[2].weights[sure].max() == 0.0
