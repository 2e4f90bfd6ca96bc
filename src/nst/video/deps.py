"""The video extra (PyAV, OpenCV): imported on first use, one line when missing."""

from __future__ import annotations

from types import ModuleType

from ..errors import ConfigError

INSTALL = "video needs PyAV and OpenCV: pip install 'nst[video]' (make install does it)"


def import_av() -> ModuleType:
    try:
        import av
    except ImportError:
        raise ConfigError(INSTALL) from None
    return av


def import_cv2() -> ModuleType:
    try:
        import cv2
    except ImportError:
        raise ConfigError(INSTALL) from None
    return cv2
