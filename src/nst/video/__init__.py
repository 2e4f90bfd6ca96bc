"""Video: stylized frames kept consistent along optical flow (Ruder et al. 2016).

Needs the ``video`` extra (PyAV, OpenCV headless): ``pip install 'nst[video]'``. The names
are imported on first use (``nst.lazy``), so reading :class:`VideoConfig` does not load
torch, av or cv2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import homes, install

if TYPE_CHECKING:
    from .api import (
        VideoMetrics,
        VideoResult,
        VideoStopped,
        stylize_video,
        video_metrics,
        work_folder,
    )
    from .config import VideoConfig

_WHERE = homes(
    api=[
        "VideoMetrics",
        "VideoResult",
        "VideoStopped",
        "stylize_video",
        "video_metrics",
        "work_folder",
    ],
    config=["VideoConfig"],
)
__all__ = sorted(_WHERE)
install(__name__, _WHERE)
