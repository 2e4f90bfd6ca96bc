"""The app's routes, one APIRouter per concern: the pages, the jobs (and their events and
files), one event stream for all the jobs a page follows, the server's metadata
(options, built-ins, estimates) and the Explore API."""

from . import explore, jobs, meta, pages, streams

ROUTERS = (pages.router, meta.router, jobs.router, streams.router, explore.router)

__all__ = ["ROUTERS"]
