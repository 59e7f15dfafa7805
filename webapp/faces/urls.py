"""The face detection page."""

from django.urls import path

from webapp.faces import views

urlpatterns = [
    path("faces/", views.faces_page, name="faces"),
]
