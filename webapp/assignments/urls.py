"""Assignment pages, and the class dashboard (a page of webapp.front that lists them)."""

from django.urls import path

from webapp import converters
from webapp.assignments import views
from webapp.front import dashboard

converters.register()  # <id:...>: at most 18 digits, so an id always fits

urlpatterns = [
    path("courses/<id:course_id>/dashboard/", dashboard.course_dashboard, name="course_dashboard"),
    path("courses/<id:course_id>/dashboard/live/", dashboard.dashboard_live, name="dashboard_live"),
    path(
        "courses/<id:course_id>/assignments/",
        views.course_assignments,
        name="course_assignments",
    ),
    path("courses/<id:course_id>/assignments/new/", views.assignment_new, name="assignment_new"),
    path("assignments/<id:assignment_id>/", views.assignment_detail, name="assignment_detail"),
    path("assignments/<id:assignment_id>/edit/", views.assignment_edit, name="assignment_edit"),
    path("assignments/<id:assignment_id>/live/", views.assignment_live, name="assignment_live"),
    path(
        "assignments/<id:assignment_id>/submit/", views.assignment_submit, name="assignment_submit"
    ),
    path(
        "assignments/<id:assignment_id>/marks.csv",
        views.assignment_marks_csv,
        name="assignment_marks_csv",
    ),
]
