"""The annotation studio's pages (its JSON API is in webapp/api/studio.py)."""

from django.urls import path

from webapp.studio import grid, views

urlpatterns: list = [
    path("datasets/<id:dataset_id>/studio/", grid.studio_home, name="studio_home"),
    path("datasets/<id:dataset_id>/studio/<uuid:item_uid>/", views.studio_item, name="studio_item"),
]
