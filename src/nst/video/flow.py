"""Dense optical flow, warping and the reliability of a flow (Ruder et al. 2016).

Conventions: images are HxWx3 uint8 arrays (RGB) or HxW float arrays; a flow is an
HxWx2 float32 array of (dx, dy). ``flow(a, b)`` is the displacement that carries each
pixel of ``a`` to its place in ``b``: ``a(p) ~ b(p + flow(p))``, so
``warp(b, flow(a, b))`` looks like ``a``. The previous stylized frame warped into the
current frame is therefore ``warp(previous_output, flow(current, previous))``.
"""

from __future__ import annotations

import numpy as np

from .deps import import_cv2

#: Ruder et al.'s consistency thresholds (pixel units at the flow's resolution)
DISOCCLUSION_REL = 0.01
DISOCCLUSION_ABS = 0.5
BOUNDARY_REL = 0.01
BOUNDARY_ABS = 0.002
#: the mask is blurred a little so the unreliable region grows (their sigma)
MASK_SIGMA = 0.8
#: the detail given back to a carried picture (:func:`carry`): an unsharp mask of this
#: sigma (px), at most this amount
DETAIL_SIGMA = 0.7
DETAIL_MAX = 2.0


def _gray(image: np.ndarray) -> np.ndarray:
    cv2 = import_cv2()
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from ``a`` to ``b`` (HxWx2 float32): ``a(p) ~ b(p + flow(p))``."""
    cv2 = import_cv2()
    ga, gb = _gray(a), _gray(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # down to full resolution (the preset stops at half): a small moving object's
        # disocclusion is found at working sizes (measured on the sample clip: 0.70-1.0 of
        # a square's trail marked at 64-256 px, against 0-0.76 at half resolution)
        dis.setFinestScale(0)
        if min(ga.shape) < 160:  # small frames: smaller patches
            dis.setPatchSize(4)
            dis.setPatchStride(2)
        out = dis.calc(ga, gb, None)
    elif method == "farneback":
        out = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 5, 5, 1.1, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}")
    return np.ascontiguousarray(out, dtype=np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``out(p) = image(p + f(p))``, bilinear, edges repeated (HxW or HxWxC, any float or
    uint8 array; the result is float32)."""
    cv2 = import_cv2()
    h, w = f.shape[:2]
    xs, ys = _grid(h, w)
    src = np.ascontiguousarray(image, dtype=np.float32)
    return cv2.remap(
        src, xs + f[..., 0], ys + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def sharpness(image: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels (grey, both directions): the mean
    gradient magnitude that the video benchmark follows frame by frame."""
    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    if min(grey.shape) < 2:
        return 0.0
    return float(np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean())


def carry(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """A picture carried along the flow to the next frame (HxWx3, 0..255 float32): like
    :func:`warp`, but without the softening that resampling adds at every frame.

    Any interpolation at sub-pixel positions is a low-pass filter; carried frame after
    frame it compounds (measured on the sample clip's stylized frames: one warp takes
    20% of the mean gradient with bilinear sampling, 3% with bicubic, 1.4% with Lanczos).
    So the picture is resampled with Lanczos (8x8) and then given back the detail the
    resampling took: an unsharp mask (sigma 0.7) whose amount is solved so that the
    carried picture, where it comes from inside the frame, is as sharp as the part of the
    source it comes from (at most ``DETAIL_MAX``, so noise is never invented). A shift by
    whole pixels is exact."""
    cv2 = import_cv2()
    h, w = f.shape[:2]
    xs, ys = _grid(h, w)
    src = np.ascontiguousarray(image, dtype=np.float32)
    tx, ty = xs + f[..., 0], ys + f[..., 1]
    out = cv2.remap(src, tx, ty, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    out = np.clip(out, 0, 255)
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    if inside.sum() < 16:
        return out
    # the box of pixels drawn from inside the frame, and the box of the source they come from
    rows, cols = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    here = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    xin, yin = tx[inside], ty[inside]
    there = (
        slice(int(np.floor(yin.min())), int(np.ceil(yin.max())) + 1),
        slice(int(np.floor(xin.min())), int(np.ceil(xin.max())) + 1),
    )
    detail = out - cv2.GaussianBlur(out, (0, 0), DETAIL_SIGMA)  # an unsharp mask adds it
    now = sharpness(out[here])
    lost = sharpness(src[there]) - now
    gain = sharpness((out + detail)[here]) - now
    if lost <= 0 or gain <= 0:
        return out
    return np.clip(out + min(lost / gain, DETAIL_MAX) * detail, 0, 255)


def reliability(backward: np.ndarray, forward: np.ndarray, blur: bool = True) -> np.ndarray:
    """Per-pixel weight in [0, 1] of the current frame's pixels for the temporal loss.

    ``backward`` = flow(current, previous), ``forward`` = flow(previous, current). A pixel
    is unreliable (0) when it flows out of the frame, when the round trip does not come
    back (disoccluded: |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5, w~ the forward flow
    at the pixel's place in the previous frame) or on a motion boundary
    (|grad u|^2 + |grad v|^2 > 0.01 |w^|^2 + 0.002); else 1. ``blur`` then grows the
    unreliable region a little (Gaussian, sigma 0.8), as Ruder et al. do.
    """
    cv2 = import_cv2()
    h, w = backward.shape[:2]
    xs, ys = _grid(h, w)
    tx, ty = xs + backward[..., 0], ys + backward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    fwd_at = warp(forward, backward)
    round_trip = np.sum((fwd_at + backward) ** 2, axis=2)
    magnitude = np.sum(fwd_at**2, axis=2) + np.sum(backward**2, axis=2)
    disoccluded = round_trip > DISOCCLUSION_REL * magnitude + DISOCCLUSION_ABS
    gy_u, gx_u = np.gradient(backward[..., 0])
    gy_v, gx_v = np.gradient(backward[..., 1])
    gradient = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2
    boundary = gradient > BOUNDARY_REL * np.sum(backward**2, axis=2) + BOUNDARY_ABS
    mask = (inside & ~disoccluded & ~boundary).astype(np.float32)
    if blur:
        mask = cv2.GaussianBlur(mask, (0, 0), MASK_SIGMA)
        mask = np.minimum(mask, (inside & ~disoccluded & ~boundary).astype(np.float32))
    return mask


def flows(
    current: np.ndarray, previous: np.ndarray, method: str = "dis"
) -> tuple[np.ndarray, np.ndarray]:
    """(warp field into ``previous``, reliability): what a temporal term needs."""
    backward = flow(current, previous, method)
    forward = flow(previous, current, method)
    return backward, reliability(backward, forward)
