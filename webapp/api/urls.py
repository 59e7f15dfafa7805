"""Assemble the API: one router per resource."""

from webapp.api import assignments, auth, courses, datasets, jobs
from webapp.api.base import api

api.add_router("", auth.router)
api.add_router("", courses.router)
api.add_router("", datasets.router)
api.add_router("", jobs.router)
api.add_router("", assignments.router)
