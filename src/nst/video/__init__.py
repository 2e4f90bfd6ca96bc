"""Video: stylized frames kept consistent along optical flow (Ruder et al. 2016).

Needs the ``video`` extra (PyAV, OpenCV headless): ``pip install 'nst[video]'``.
"""

from .api import VideoMetrics, VideoResult, VideoStopped, stylize_video, video_metrics, work_folder
from .config import VideoConfig

__all__ = [
    "VideoConfig",
    "VideoMetrics",
    "VideoResult",
    "VideoStopped",
    "stylize_video",
    "video_metrics",
    "work_folder",
]
