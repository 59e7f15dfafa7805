"""Scoring a submission: the job's saved model against the hidden test set, on a worker.

The hidden set is read at the version frozen when the run was handed in, so a later edit of
the test set never changes a score already given without the teacher asking for it.
"""

import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from webapp.assignments import actions
from webapp.assignments.models import Submission, SubmissionStatus
from webapp.datasets import queries as dataset_queries
from webapp.jobs import kinds

log = logging.getLogger(__name__)


def hidden_objects(dataset, version: int) -> tuple[list, list[str]]:
    """The images of a detection, segmentation or keypoints version as the trainer's manifest
    items (their annotations in COCO shapes, in the original pixels: boxes, polygons or RLE
    masks, keypoints; categories indexing the class names), and the class names."""
    from trainer.spec import ManifestItem
    from webapp.jobs.tasks import manifest_annotation

    categories = dataset_queries.categories_at(dataset, version)
    position = {c.index: i for i, c in enumerate(categories)}
    items = []
    rows = dataset_queries.items_at(dataset, version).select_related("image")
    rows = rows.prefetch_related("annotations").order_by("pk")
    for item in rows.iterator(chunk_size=2000):
        objects = [
            manifest_annotation(a, position[a.category_index])
            for a in item.annotations.all()
            if a.category_index in position
        ]
        path = default_storage.path(item.image.file)
        items.append(ManifestItem(path=path, annotations=objects, split="test", id=item.pk))
    return items, [c.name for c in categories]


def hidden_keypoints(dataset, version: int):
    """The keypoint set of a version (trainer.spec.KeypointSchema: names, 1-based skeleton and
    the class's own OKS sigmas, else the trainer's defaults) from its first category with
    keypoints, or None."""
    from trainer.spec import KeypointSchema
    from webapp.jobs.spec_check import keypoint_schema

    schema = keypoint_schema(dataset_queries.categories_at(dataset, version))
    return None if schema is None else KeypointSchema(**schema)


def hidden_labels(dataset, version: int) -> tuple[list, list[str]]:
    """The labelled images of a classification version as manifest items, and the class names."""
    from trainer.spec import ManifestItem

    paths, labels, classes = hidden_items(dataset, version)
    items = [
        ManifestItem(path=path, label=label, split="test")
        for path, label in zip(paths, labels, strict=True)
    ]
    return items, classes


def score_on_hidden(kind: str, job_id: int, hidden, version: int) -> dict:
    """A run's figures on a hidden test set, by its kind's loop (`trainer.inference.score`, on a
    worker: torch), keyed as the assignment's metrics are (kinds.ASSIGNMENT_METRICS: accuracy
    and macro_f1, map50, miou, oks_ap)."""
    from trainer import inference, scoring

    shape = kinds.shape(kind)
    if shape.one_label_per_image:
        items, classes = hidden_labels(hidden, version)
    else:
        items, classes = hidden_objects(hidden, version)
    if not items:
        raise scoring.ScoringError("the hidden test set has no images")
    keypoints = hidden_keypoints(hidden, version) if shape.has_keypoints else None
    from webapp.jobs.predict import model_dir  # one place says where a run's model is

    return inference.score(kind, model_dir(job_id), items, classes, keypoints).to_dict()


def hidden_items(dataset, version: int) -> tuple[list[str], list[int], list[str]]:
    """Image paths, labels (indices into the class names) and the class names of a version."""
    categories = dataset_queries.categories_at(dataset, version)
    position = {c.index: i for i, c in enumerate(categories)}
    paths, labels = [], []
    rows = dataset_queries.items_at(dataset, version).filter(category_index__isnull=False)
    for item in rows.select_related("image").order_by("pk").iterator(chunk_size=2000):
        if item.category_index in position:
            paths.append(default_storage.path(item.image.file))
            labels.append(position[item.category_index])
    return paths, labels, [c.name for c in categories]


def reason_of(exc: Exception) -> dict:
    """What went wrong, as data: the page words it in the reader's language (`reason_text`)."""
    from trainer import data, scoring

    if isinstance(exc, scoring.ClassMismatch):
        return {"code": "classes", "names": exc.missing[:10]}
    if isinstance(exc, scoring.ModelUnavailable):
        return {"code": "model", "detail": str(exc)[:300]}
    if isinstance(exc, scoring.ScoringError | data.DataError):
        # Storage paths mean nothing to a student; the file name after them is enough.
        detail = str(exc).replace(f"{settings.MEDIA_ROOT}/", "")
        return {"code": "data", "detail": detail[:300]}
    return {"code": "internal"}


def reason_text(reason: dict) -> str:
    """Why a submission was not scored, written for the student, in the current language."""
    code = reason.get("code")
    if code == "classes":
        names = ", ".join(f"“{name}”" for name in reason.get("names", []))
        return _(
            "Your model does not know the class(es) %(names)s of the hidden test set. Train on "
            "the assignment's dataset without renaming or removing classes, then submit again."
        ) % {"names": names}
    if code == "model":
        return _(
            "The trained model of this run cannot be loaded (%(reason)s). Train the run again, "
            "then submit the new one."
        ) % {"reason": reason.get("detail", "")}
    if code == "data":
        return _(
            "The hidden test set could not be read, so nothing was scored; tell your teacher. "
            "(%(reason)s)"
        ) % {"reason": reason.get("detail", "")}
    return _(
        "Scoring stopped on an internal error, which was logged; tell your teacher. "
        "Submitting again does not count against today's limit."
    )


def error_text(submission: Submission) -> str:
    """The stored reason in the reader's language (the error column keeps the site's one)."""
    reason = (submission.details or {}).get("reason")
    return reason_text(reason) if reason else submission.error


def score_submission(submission_id: int) -> str:
    """Claim, score and store one submission; returns its final status."""
    # A redelivered message (the worker died while scoring) may claim a submission again:
    # scoring is a pure function of the files, so doing it twice gives the same figures.
    claimed = Submission.objects.filter(
        Q(status=SubmissionStatus.QUEUED) | Q(status=SubmissionStatus.SCORING), pk=submission_id
    ).update(status=SubmissionStatus.SCORING)
    if not claimed:
        return "gone"
    submission = Submission.objects.select_related(
        "assignment__hidden_test", "assignment__course", "assignment__dataset", "job"
    ).get(pk=submission_id)
    assignment = submission.assignment
    actions.send_to_course(
        assignment.course_id,
        {"kind": "assignment", "assignment": assignment.pk, "change": "scoring"},
    )
    from trainer import data, scoring  # torch only here

    fields: dict = {"scored_at": timezone.now()}
    kind = kinds.dataset_kind(assignment.dataset)  # an assignment's kind is its dataset's
    try:
        figures = score_on_hidden(
            kind, submission.job_id, assignment.hidden_test, submission.hidden_version
        )
        if figures.get(assignment.metric) is None:  # e.g. OKS AP of a set without keypoints
            raise scoring.ScoringError(
                f"the hidden test set gives no {assignment.metric}: it has nothing to score it on"
            )
    except Exception as exc:  # noqa: BLE001 - the student gets a reason, the log the details
        expected = isinstance(exc, scoring.ScoringError | data.DataError)
        log.log(
            logging.INFO if expected else logging.ERROR,
            "submission %s not scored: %r",
            submission_id,
            exc,
            exc_info=not expected,
        )
        reason = reason_of(exc)
        with translation.override(settings.LANGUAGE_CODE):
            error = reason_text(reason)
        fields.update(status=SubmissionStatus.FAILED, error=error, details={"reason": reason})
    else:
        fields.update(
            status=SubmissionStatus.SCORED, score=figures[assignment.metric], details=figures
        )
    Submission.objects.filter(pk=submission_id).update(**fields)
    actions.send_to_course(
        assignment.course_id,
        {"kind": "assignment", "assignment": assignment.pk, "change": fields["status"]},
    )
    return fields["status"]
