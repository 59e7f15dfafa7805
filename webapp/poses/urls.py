"""The pose estimation page."""

from django.urls import path

from webapp.poses import views

urlpatterns = [
    path("poses/", views.poses_page, name="poses"),
]
