"""The commands of ``nst``, one module each; :data:`MODULES` lists them in the order
``nst --help`` shows them, and each registers its commands with ``register(app)``."""

from . import batch, explain, figures, reconstruct, score, serve, stylize, video

#: the order of ``nst --help``: painting first, then the paper, the tools, the services
MODULES = (stylize, video, batch, score, reconstruct, figures, explain, serve)

__all__ = ["MODULES"]
