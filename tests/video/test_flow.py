"""Optical flow, warping, the reliability mask and the temporal loss, against known motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import assert_close, picture

cv2 = pytest.importorskip("cv2", reason="make test installs nst[video]")

from nst.video import flow as flowlib  # noqa: E402
from nst.video.sample import sample_frames  # noqa: E402
from nst.video.temporal import Earlier, TemporalLoss, Warped, blend_start, warp_earlier  # noqa: E402


def test_warp_by_a_whole_pixel_shift_is_exact():
    img = picture(40, 30, 3).astype(np.float32)
    f = np.zeros((30, 40, 2), np.float32)
    f[..., 0] = 2.0  # out(p) = img(p + (2, 0))
    out = flowlib.warp(img, f)
    assert np.array_equal(out[:, :-2], img[:, 2:])
    assert np.array_equal(out[:, -2:], np.repeat(img[:, -1:], 2, axis=1))  # edge repeated


def test_sharpness_by_hand():
    img = np.zeros((3, 4), np.float32)
    img[:, 2:] = 8.0  # one vertical edge: 8 in 3 of 9 horizontal pairs, no vertical change
    assert flowlib.sharpness(img) == pytest.approx(8.0 * 3 / 9)
    rgb = np.stack([img, img * 2, img * 3], axis=2)  # grey = mean of channels = 2 * img
    assert flowlib.sharpness(rgb) == pytest.approx(16.0 * 3 / 9)


def test_carrying_a_picture_keeps_its_detail_where_resampling_softens_it():
    """Half a pixel of shift is the worst case for interpolation: bilinear sampling takes a
    fifth of a texture's mean gradient; a carried picture keeps it (within 1%)."""
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 255, (48, 64, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 0.8)  # detail near a pixel, like strokes
    f = np.full((48, 64, 2), 0.5, np.float32)
    inner = (slice(4, -4), slice(4, -4))
    before = flowlib.sharpness(texture[inner])
    assert flowlib.sharpness(flowlib.warp(texture, f)[inner]) < 0.85 * before
    carried = flowlib.carry(texture, f)
    assert abs(flowlib.sharpness(carried[inner]) / before - 1) < 0.01
    assert carried.min() >= 0 and carried.max() <= 255
    # at whole pixels nothing is lost, so nothing is added
    f[...] = 1.0
    assert np.allclose(flowlib.carry(texture, f)[:-1, :-1], texture[1:, 1:], atol=1e-3)
    flat = np.full((16, 16, 3), 90.0, np.float32)
    assert np.allclose(flowlib.carry(flat, np.full((16, 16, 2), 0.3, np.float32)), 90.0)


def test_multi_pass_blend_by_hand():
    """(x + c w) / (1 + c): the last result alone where the flow is unreliable, half and
    half where it is reliable (Ruder et al.'s blend weight 1)."""
    last = np.full((2, 3, 3), 100, np.uint8)
    image = np.full((2, 3, 3), 200.0, np.float32)
    c = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]], np.float32)
    got = blend_start(last, Warped(1, image, c)) * 255.0
    want = (100.0 + c * 200.0) / (1.0 + c)
    for ch in range(3):
        assert_close(got[ch], torch.from_numpy(want), rel=1e-6)
    assert_close(blend_start(last, None) * 255.0, torch.full((3, 2, 3), 100.0), rel=1e-6)


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
