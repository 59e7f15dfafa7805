"""Job pages: launching, watching, results, comparing, the queue."""

from django.urls import path

from webapp import converters
from webapp.jobs import compare, launch, queue_views, results, segmentation_results, views

converters.register()  # <id:...>: at most 18 digits, so an id always fits

urlpatterns = [
    path("datasets/<id:dataset_id>/train/", launch.train, name="dataset_train"),
    path("jobs/<id:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<id:job_id>/cancel/", views.cancel, name="job_cancel"),
    path("jobs/<id:job_id>/result/", results.job_result, name="job_result"),
    path(
        "jobs/<id:job_id>/confusion/<id:true>/<id:predicted>/",
        results.confusion_cell,
        name="job_confusion_cell",
    ),
    path("jobs/<id:job_id>/try/", results.try_page, name="job_try"),
    path("jobs/<id:job_id>/detections/", results.detections, name="job_detections"),
    path("jobs/<id:job_id>/images/", results.evaluated_images, name="job_images"),
    path(
        "jobs/<id:job_id>/masks/<str:split>/<id:item_id>.png",
        segmentation_results.mask_overlay,
        name="job_mask",
    ),
    path("compare/", compare.compare, name="job_compare"),
    path("groups/<id:group_id>/", compare.group_compare, name="job_group"),
    path("jobs/<id:job_id>/move/", queue_views.move, name="job_move"),
    path("courses/<id:course_id>/queue/", queue_views.course_queue, name="course_queue"),
]
