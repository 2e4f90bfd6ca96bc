"""The commands of ``nst``; importing this package registers them on the app."""

from . import explain, figures, reconstruct, serve, stylize

__all__ = ["explain", "figures", "reconstruct", "serve", "stylize"]
