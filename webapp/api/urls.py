"""Assemble the API: one router per resource."""

from webapp.api import (
    assignments,
    assist,
    auth,
    courses,
    datasets,
    faces,
    jobs,
    labelling,
    models,
    poses,
    studio,
)
from webapp.api.base import api

api.add_router("", auth.router)
api.add_router("", courses.router)
api.add_router("", datasets.router)
api.add_router("", models.router)  # before jobs: /jobs/validate is not /jobs/{job_id}
api.add_router("", jobs.router)
api.add_router("", assignments.router)
api.add_router("", faces.router)
api.add_router("", poses.router)
api.add_router("", studio.router)
api.add_router("", assist.router)  # model-assisted labelling: /assist, /draft/accept, /draft/reject
api.add_router("", labelling.router)  # labelling assignments, read-only
