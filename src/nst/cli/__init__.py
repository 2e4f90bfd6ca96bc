"""The ``nst`` command line: option reflection (``options``), progress rendering
(``progress``), the run scaffold (``run``), the commands (``commands``) and the
composition root that registers them (``app``)."""

from .app import app, main

__all__ = ["app", "main"]
