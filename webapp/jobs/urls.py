"""Job pages: launching, watching, results, comparing, the queue."""

from django.urls import path

from webapp.jobs import launch, queue_views, results, views

urlpatterns = [
    path("datasets/<int:dataset_id>/train/", launch.train, name="dataset_train"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", views.cancel, name="job_cancel"),
    path("jobs/<int:job_id>/result/", results.job_result, name="job_result"),
    path(
        "jobs/<int:job_id>/confusion/<int:true>/<int:predicted>/",
        results.confusion_cell,
        name="job_confusion_cell",
    ),
    path("jobs/<int:job_id>/try/", results.try_page, name="job_try"),
    path("compare/", results.compare, name="job_compare"),
    path("groups/<int:group_id>/", results.group_compare, name="job_group"),
    path("jobs/<int:job_id>/move/", queue_views.move, name="job_move"),
    path("courses/<int:course_id>/queue/", queue_views.course_queue, name="course_queue"),
]
