"""The commands of ``nst``; importing this package registers them on the app."""

from . import figures, reconstruct, serve, stylize

__all__ = ["figures", "reconstruct", "serve", "stylize"]
