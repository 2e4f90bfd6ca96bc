"""The app's routes, one APIRouter per concern: the pages, the jobs (and their events and
files), the sign-in form, one event stream for all the jobs a page follows, the server's metadata
(options, built-ins, estimates) and the Explore API."""

from . import explore, jobs, meta, pages, signin, streams

ROUTERS = (pages.router, signin.router, meta.router, jobs.router, streams.router, explore.router)

__all__ = ["ROUTERS"]
