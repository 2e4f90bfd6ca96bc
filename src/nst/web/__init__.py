"""The web app: ``nst serve`` (FastAPI + uvicorn), one page and a JSON API."""

from .app import create_app
from .manager import JobManager
from .settings import WebSettings

__all__ = ["JobManager", "WebSettings", "create_app"]
