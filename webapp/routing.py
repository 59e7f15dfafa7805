"""Websocket URLs."""

from django.urls import path

from webapp.accounts.consumers import CourseConsumer
from webapp.jobs.consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/courses/<int:course_id>/", CourseConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
]
