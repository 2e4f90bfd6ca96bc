"""The built-in images as the pages show them: each encoded once as PNG (full size) and
as a small inlined thumbnail, made on a thread at start-up so the galleries fill at once."""

from __future__ import annotations

import base64
import io
import threading

from .. import builtins
from ..own_thread import on_own_thread

#: the thumbnails' longest side (the galleries show them at 72×56 CSS px, 2× for HiDPI)
THUMB = 160


class Gallery:
    """Encoded built-ins, made once (under a lock: a request during the warm-up waits)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pngs: dict[str, bytes] = {}
        self.thumbs: dict[str, str] = {}

    def png(self, name: str) -> bytes:
        """The built-in ``name`` (a key of ``builtins.BUILTINS``) as PNG bytes."""
        with self.lock:
            if name not in self.pngs:
                self._make(name)
            return self.pngs[name]

    def thumb(self, name: str) -> str:
        """A small JPEG of ``name`` as a data URL (inlined in ``/api/builtins``)."""
        with self.lock:
            if name not in self.thumbs:
                self._make(name)
            return self.thumbs[name]

    def _make(self, name: str) -> None:
        image = on_own_thread(builtins.image, name)  # torch: not on a request's pooled thread
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        self.pngs[name] = buf.getvalue()
        small = image.convert("RGB")
        small.thumbnail((THUMB, THUMB))
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=85)
        self.thumbs[name] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()

    def warm(self) -> threading.Thread:
        """Encode every built-in on a daemon thread."""

        def run() -> None:
            for name in builtins.BUILTINS:
                self.thumb(name)

        t = threading.Thread(target=run, name="nst-gallery", daemon=True)
        t.start()
        return t
