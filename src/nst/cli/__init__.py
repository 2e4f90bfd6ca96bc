"""The ``nst`` command line: option reflection (``options``), progress rendering
(``progress``), running a job (``run``) and the commands (``commands``)."""

from . import commands as _commands  # noqa: F401  (registers the commands on the app)
from .app import app, main

__all__ = ["app", "main"]
