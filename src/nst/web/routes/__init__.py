"""The app's routes, one APIRouter per concern: the pages, the jobs (and their events and
files), the server's metadata (options, built-ins, estimates) and the Explore API."""

from . import explore, jobs, meta, pages

ROUTERS = (pages.router, meta.router, jobs.router, explore.router)

__all__ = ["ROUTERS"]
