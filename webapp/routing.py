"""Websocket URLs."""

from django.urls import path

from webapp.accounts.consumers import CourseConsumer

websocket_urlpatterns = [
    path("ws/courses/<int:course_id>/", CourseConsumer.as_asgi()),
]
