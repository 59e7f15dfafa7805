"""Datasets, their stored images, versioned items and COCO-shaped annotations.

Versioning: Category and Item rows carry the version range they belong to
(`valid_from` ≤ v < `valid_to`, open-ended while `valid_to` is null). An edit closes the rows it
changes and writes new ones, so every earlier version stays readable exactly as it was. An item and
an annotation keep their `uid` across those copies: it is what the annotation studio, its drafts
and their conflicts speak of. Studio edits collect in a person's `Draft` (one `DraftChange` per
annotation touched) and become one new version when committed (`webapp/datasets/drafts.py`).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webapp.accounts.models import Course


class Kind(models.TextChoices):
    """The ML problem a dataset is for (a Celery task is something else)."""

    CLASSIFICATION = "classification", _("Classification")
    DETECTION = "detection", _("Object detection")
    SEGMENTATION = "segmentation", _("Segmentation")
    KEYPOINTS = "keypoints", _("Keypoints (pose)")


class Visibility(models.TextChoices):
    PRIVATE = "private", _("Private (me and the teachers)")
    SHARED = "shared", _("Shared with the class")
    HANDOUT = "handout", _("Handed out by the teacher")
    HIDDEN_TEST = "hidden_test", _("Hidden test set (teachers only)")


class Status(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class Split(models.TextChoices):
    TRAIN = "train", _("Training")
    VAL = "val", _("Validation")
    TEST = "test", _("Test")


class Dataset(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="datasets")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets"
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    visibility = models.CharField(
        _("visibility"), max_length=20, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROCESSING)
    progress = models.FloatField(default=0.0)  # 0..1 while processing
    error = models.TextField(blank=True)  # why a whole upload failed, for a student
    report = models.JSONField(default=dict, blank=True)  # format, accepted per class, rejected
    head = models.PositiveIntegerField(default=0)  # latest version number; 0 = none yet
    bytes_used = models.BigIntegerField(default=0)  # stored image bytes this dataset added
    source = models.CharField(max_length=100, blank=True)  # "upload", "sample:digits", ...
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")

    def __str__(self) -> str:
        return self.name

    @property
    def shown_name(self) -> str:
        """The name pages show: a copy of a built-in sample that nobody renamed follows the
        reader's language (the demo's digits copied under Japanese read in English too)."""
        if not self.source.startswith("sample:"):
            return self.name
        from django.utils.translation import get_language

        from webapp.datasets.samples import SAMPLES  # numpy and Pillow only when needed

        sample = SAMPLES.get(self.source.removeprefix("sample:"))
        if sample is None or self.name not in sample.title.values():
            return self.name
        return sample.in_language(get_language())["title"]

    @property
    def shape(self):
        """What the dataset's kind's data is (trainer.kinds.Shape: one_label_per_image,
        annotates_objects, has_masks, has_keypoints): pages ask this, not the kind's name."""
        from trainer.kinds import shape

        return shape(self.kind)

    @property
    def trainable(self) -> bool:
        """Whether the trainer has a loop for this dataset's kind (it says so; no torch import)."""
        from trainer.kinds import can_train

        return can_train(self.kind)


class StoredImage(models.Model):
    """An image file stored once under its content hash; datasets share it."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.CharField(max_length=200)  # storage name chosen by the server
    thumb = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)  # checked at ingest, sent when serving
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()  # 1 grayscale, 3 RGB
    bytes = models.PositiveIntegerField()
    phash = models.CharField(max_length=16)  # 64-bit difference hash, hex
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.sha256[:12]


class Version(models.Model):
    """A frozen state of a dataset: items, labels and split at one moment."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.CharField(max_length=300)
    counts = models.JSONField(default=dict)  # {"train": {"cat": 12}, "val": {...}, ...}
    split_settings = models.JSONField(default=dict)  # {"val": 0.2, "test": 0.0, "seed": 0, ...}

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="one_number_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} v{self.number}"


def at_version(number: int) -> Q:
    """Rows valid at a version number."""
    return Q(valid_from__lte=number) & (Q(valid_to__isnull=True) | Q(valid_to__gt=number))


class Category(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="categories")
    index = models.PositiveIntegerField()  # stable id within the dataset; annotations use it
    name = models.CharField(max_length=200)
    keypoints = models.JSONField(default=list, blank=True)  # keypoint names (keypoint sets)
    skeleton = models.JSONField(default=list, blank=True)  # 1-based pairs, as in COCO
    # OKS sigmas, one per keypoint (COCO's categories[].sigmas); empty: the trainer's defaults
    sigmas = models.JSONField(default=list, blank=True)
    valid_from = models.PositiveIntegerField()
    valid_to = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        indexes = [models.Index(fields=["dataset", "valid_to"])]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """One image in one dataset at a range of versions, with its split and label."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(StoredImage, on_delete=models.PROTECT, related_name="items")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)  # the same in every version
    original_path = models.CharField(max_length=1024)  # the uploader's name: data only
    split = models.CharField(max_length=5, choices=Split.choices, default=Split.TRAIN)
    fold = models.SmallIntegerField(default=-1)  # k-fold index, -1 when not assigned
    category_index = models.IntegerField(null=True, blank=True)  # classification label
    valid_from = models.PositiveIntegerField()
    valid_to = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["dataset", "valid_to", "split", "id"]),
            models.Index(fields=["dataset", "valid_to", "category_index", "id"]),
            models.Index(fields=["dataset", "uid"]),
        ]

    def __str__(self) -> str:
        return self.original_path


class Annotation(models.Model):
    """A COCO-shaped annotation of an item: a box, polygons, keypoints (or just a label)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)  # the same in every version
    revision = models.PositiveIntegerField(default=1)  # +1 at each commit that changes it
    category_index = models.IntegerField()
    bbox = models.JSONField(null=True, blank=True)  # [x, y, w, h]
    segmentation = models.JSONField(null=True, blank=True)  # [[x1, y1, x2, y2, ...], ...]
    keypoints = models.JSONField(null=True, blank=True)  # [x1, y1, v1, ...]
    area = models.FloatField(default=0.0)
    iscrowd = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["category_index"]), models.Index(fields=["uid"])]

    def __str__(self) -> str:
        return f"annotation {self.pk} of item {self.item_id}"


class Draft(models.Model):
    """One person's uncommitted studio edits of a dataset, on top of version `base`."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drafts"
    )
    base = models.PositiveIntegerField()  # the head when the draft began
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "user"], name="one_draft_per_person")
        ]

    def __str__(self) -> str:
        return f"draft of {self.dataset_id} by {self.user_id}"


class Op(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LABEL = "label"  # an image's class (classification); uid is the item's uid
    CATEGORY = "category"  # a class added while labelling; uid is made up for it


class DraftChange(models.Model):
    """The latest state of one annotation (or label, or new class) in a draft: each saved
    delta replaces its row, so a draft holds one row per thing touched, never a history."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="changes")
    item_uid = models.UUIDField(null=True, blank=True)  # null for a new class
    uid = models.UUIDField()
    op = models.CharField(max_length=10, choices=Op.choices)
    data = models.JSONField(default=dict, blank=True)  # the annotation's fields, as the API's
    base_revision = models.PositiveIntegerField(default=0)  # what it changes; 0 = new
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["draft", "uid"], name="one_change_per_thing")
        ]
        indexes = [models.Index(fields=["draft", "item_uid"])]

    def __str__(self) -> str:
        return f"{self.op} {self.uid}"


class Upload(models.Model):
    """A chunked, resumable upload of one archive, stored under a server-chosen name."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = models.ForeignKey(Course, on_delete=models.CASCADE)
    file_name = models.CharField(max_length=255)  # the uploader's name: data only
    size = models.BigIntegerField()  # declared total
    received = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.file_name

    @property
    def storage_dir(self) -> str:
        """Chunks are stored as separate files here (works on local disk and S3 alike)."""
        return f"uploads/{self.id.hex}"
