"""Websocket URLs."""

from django.urls import path

from webapp import converters
from webapp.accounts.consumers import CourseConsumer
from webapp.jobs.consumers import JobConsumer

converters.register()  # <id:...>: at most 18 digits, so an id always fits

websocket_urlpatterns = [
    path("ws/courses/<id:course_id>/", CourseConsumer.as_asgi()),
    path("ws/jobs/<id:job_id>/", JobConsumer.as_asgi()),
]
