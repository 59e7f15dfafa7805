"""Labelling assignments' pages."""

from django.urls import path

from webapp import converters
from webapp.labelling import views

converters.register()  # <id:...>: at most 18 digits, so an id always fits

urlpatterns = [
    path("courses/<id:course_id>/labelling/", views.course_labelling, name="course_labelling"),
    path("courses/<id:course_id>/labelling/new/", views.labelling_new, name="labelling_new"),
    path("labelling/<id:assignment_id>/", views.labelling_detail, name="labelling_detail"),
    path(
        "labelling/<id:assignment_id>/images/<uuid:item_uid>/",
        views.labelling_image,
        name="labelling_image",
    ),
    path("labelling/<id:assignment_id>/done/", views.labelling_done, name="labelling_done"),
    path(
        "labelling/<id:assignment_id>/publish/", views.labelling_publish, name="labelling_publish"
    ),
]
