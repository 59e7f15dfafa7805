"""The pose estimation page: a photo or the webcam, the person's skeleton drawn over it, by
MediaPipe's pose model or by one of the class's keypoints runs the student picks."""

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from webapp.accounts import permissions
from webapp.jobs import kinds, spec_check
from webapp.jobs.models import Job, JobStatus
from webapp.poses import detect

MAX_RUNS = 50  # keypoints runs offered in the select, newest first
# COCO-17's names as the page shows them (the API answers the names themselves).
KEYPOINT_LABELS = {
    "nose": gettext_lazy("nose"),
    "left_eye": gettext_lazy("left eye"),
    "right_eye": gettext_lazy("right eye"),
    "left_ear": gettext_lazy("left ear"),
    "right_ear": gettext_lazy("right ear"),
    "left_shoulder": gettext_lazy("left shoulder"),
    "right_shoulder": gettext_lazy("right shoulder"),
    "left_elbow": gettext_lazy("left elbow"),
    "right_elbow": gettext_lazy("right elbow"),
    "left_wrist": gettext_lazy("left wrist"),
    "right_wrist": gettext_lazy("right wrist"),
    "left_hip": gettext_lazy("left hip"),
    "right_hip": gettext_lazy("right hip"),
    "left_knee": gettext_lazy("left knee"),
    "right_knee": gettext_lazy("right knee"),
    "left_ankle": gettext_lazy("left ankle"),
    "right_ankle": gettext_lazy("right ankle"),
}


@login_required
def poses_page(request):
    """Any signed-in user; the select offers only runs they may see. A worker does the work:
    POST /api/v1/poses."""
    context = {
        "runs": keypoint_runs(request.user),
        "labels": {name: str(label) for name, label in KEYPOINT_LABELS.items()},
        "visible": detect.VISIBLE,
    }
    return render(request, "poses/poses.html", context)


def keypoint_runs(user) -> list[dict]:
    """The succeeded keypoints runs of the user's classes that they may see, grouped by class:
    [{"course": name, "runs": [{"id", "label"}]}], newest first, at most MAX_RUNS in all."""
    courses = list(permissions.visible_courses(user).order_by("name", "pk"))
    if not courses:
        return []
    where = Q()
    for course in courses:  # a narrower query for students; can_view_job decides below
        seen = permissions.can_view_roster(user, course)
        where |= Q(course=course) if seen else Q(course=course, owner=user)
    jobs = (
        Job.objects.filter(where, status=JobStatus.SUCCEEDED, dataset__kind=kinds.KEYPOINTS)
        .select_related("owner", "course", "dataset")
        .defer("result", "dataset__report")
        .order_by("-finished_at", "-pk")
    )
    groups: dict[int, dict] = {}
    for job in jobs[:MAX_RUNS]:
        if permissions.can_view_job(user, job):
            group = groups.setdefault(job.course_id, {"course": job.course.name, "runs": []})
            group["runs"].append({"id": job.pk, "label": _run_label(user, job)})
    return [groups[course.pk] for course in courses if course.pk in groups]


def _run_label(user, job: Job) -> str:
    """ "#12 pose_unet · stick figures v1 · PCK 81.0% · Alice": enough to tell runs apart."""
    model = spec_check.model_of(job.spec, kinds.KEYPOINTS)
    name = model if isinstance(model, str) else _("%(n)s layers") % {"n": len(model or [])}
    parts = [f"#{job.pk} {name}", f"{job.dataset.name} v{job.dataset_version}"]
    value = kinds.primary_value(kinds.KEYPOINTS, job.metrics)
    if value is not None:
        figure = kinds.primary(kinds.KEYPOINTS)
        parts.append(f"{figure.label} {figure.text(value)}")
    if job.owner_id != user.pk:
        parts.append(job.owner.label())
    return " · ".join(parts)
