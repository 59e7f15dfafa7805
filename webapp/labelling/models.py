"""Labelling as a class activity: a teacher hands a pool of a dataset's images to students.

Each image goes to 1–3 students (`per_image`). A student's labels are their draft of the pool
dataset (`webapp.datasets.models.Draft`): the studio saves them there, only for the images they
were given, and they never commit it. The teacher compares the drafts (agreement), resolves the
images they disagree on and publishes one new version of the pool dataset.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import Course
from webapp.datasets.models import Dataset


class LabellingAssignment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="labelling")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="labelling")
    title = models.CharField(_("title"), max_length=200)
    instructions = models.TextField(_("instructions"), blank=True)
    per_image = models.PositiveSmallIntegerField(_("students per image"), default=2)  # 1..3
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(_("deadline"), null=True, blank=True)
    published_version = models.PositiveIntegerField(null=True, blank=True)
    # How the images were chosen: {"mode": "all" | "random" | "unlabelled", "count", "seed"}.
    selection = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class LabellingTask(models.Model):
    """One image of the pool given to one student."""

    assignment = models.ForeignKey(
        LabellingAssignment, on_delete=models.CASCADE, related_name="tasks"
    )
    item_uid = models.UUIDField()
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labelling_tasks"
    )
    done_at = models.DateTimeField(null=True, blank=True)  # the student said it is finished

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "item_uid", "student"], name="one_task_per_image_and_student"
            )
        ]
        indexes = [models.Index(fields=["student", "item_uid"])]

    def __str__(self) -> str:
        return f"{self.item_uid} for {self.student_id}"


class LabellingResolution(models.Model):
    """The teacher's decision for one image: one student's version of it (a copy of their label
    or annotations as they were when chosen), or none (the image stays as the dataset has it)."""

    assignment = models.ForeignKey(
        LabellingAssignment, on_delete=models.CASCADE, related_name="resolutions"
    )
    item_uid = models.UUIDField()
    chosen = models.ForeignKey(  # null: none of the students' versions
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)  # {"label": c} or {"annotations": [...]}
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "item_uid"], name="one_resolution_per_image"
            )
        ]

    def __str__(self) -> str:
        return f"{self.item_uid} resolved"
