"""Labelling assignments' pages."""

urlpatterns: list = []
