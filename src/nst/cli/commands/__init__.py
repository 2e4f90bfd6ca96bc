"""The commands of ``nst``; importing this package registers them on the app."""

from . import batch, explain, figures, reconstruct, serve, stylize, video

__all__ = ["batch", "explain", "figures", "reconstruct", "serve", "stylize", "video"]
