"""The commands of ``nst``, one module each; :data:`MODULES` lists them in the order
``nst --help`` shows them, and each registers its commands with ``register(app)``."""

from . import batch, explain, figures, reconstruct, score, serve, stylize, video

#: the order of ``nst --help``: painting (one picture, the web app, video, many), then
#: measuring and the paper, then looking inside the network
MODULES = (stylize, serve, video, batch, reconstruct, score, figures, explain)

__all__ = ["MODULES"]
