"""`/api/v1/datasets/*` and `/api/v1/uploads/*`: upload, status, samples, items, edits, export."""

from uuid import UUID

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from webapp.accounts import permissions
from webapp.accounts.models import Course
from webapp.api.base import READ, WRITE, errors
from webapp.api.dataset_schemas import (
    ClassFilter,
    CompleteIn,
    Created,
    DatasetForm,
    DatasetOut,
    DatasetPatch,
    EditIn,
    EditOut,
    ExportFormat,
    ItemsPage,
    Offset,
    Page,
    SampleIn,
    SampleOut,
    SplitFilter,
    UploadIn,
    UploadOut,
    VersionOut,
)
from webapp.api.schemas import Id
from webapp.datasets import actions, exports, queries, splits
from webapp.datasets.models import Dataset, Upload
from webapp.datasets.samples import SAMPLES

router = Router(tags=["datasets"])

BINARY = {"schema": {"type": "string", "format": "binary"}}
ZIP_ANSWER = {
    "responses": {
        200: {"description": "The ZIP, streamed.", "content": {"application/zip": BINARY}}
    }
}
CHUNK_BODY = {
    "requestBody": {
        "required": True,
        "description": "The chunk's raw bytes.",
        "content": {"application/octet-stream": BINARY},
    }
}


def _course(request, course_id: int) -> Course:
    course = Course.objects.filter(pk=course_id).first()
    if course is None or not permissions.can_view_course(request.user, course):
        raise actions.NotFound(_("No class with this id is yours."), field="course")
    return course


def _dataset(request, dataset_id: int, check=permissions.can_view_dataset) -> Dataset:
    dataset = Dataset.objects.select_related("course").filter(pk=dataset_id).first()
    if dataset is None or not permissions.can_view_dataset(request.user, dataset):
        raise Http404
    if not check(request.user, dataset):
        raise HttpError(403, _("You may not do this with this dataset."))
    return dataset


def _may_create(request, course: Course, visibility: str) -> None:
    if not permissions.can_create_dataset(request.user, course, visibility):
        raise HttpError(403, _("You may not add this kind of dataset to this class."))


def dataset_out(user, dataset: Dataset) -> dict:
    """The dataset's status and summary; images and rejected files only for who may see them."""
    full = permissions.can_view_images(user, dataset)
    classes = queries.class_counts(dataset)
    report = dataset.report or {}
    return {
        "id": dataset.pk,
        "course": dataset.course_id,
        "name": dataset.name,
        "kind": dataset.kind,
        "visibility": dataset.visibility,
        "owner": dataset.owner.username
        if permissions.can_see_dataset_owner(user, dataset)
        else None,
        "status": dataset.status,
        "progress": round(dataset.progress, 3),
        "num_images": queries.items_at(dataset).count() if dataset.head else 0,
        "classes": [{"name": c["name"], "count": c["count"]} for c in classes],
        "rejected": report.get("rejected", []) if full else [],
        "rejected_total": report.get("rejected_total", 0),
        "error": dataset.error,
        "version": dataset.head,
        "splits": _split_counts(dataset) if full else {},
    }


def _split_counts(dataset: Dataset) -> dict:
    version = dataset.versions.filter(number=dataset.head).first()
    return version.counts if version else {}


@router.post("/datasets", response={202: Created, **errors(*WRITE, 404, 409)})
def create_dataset(request, form: Form[DatasetForm], file: File[UploadedFile]):
    """Upload a ZIP in one request; ingest runs on a worker. Poll `GET /datasets/{id}`."""
    course = _course(request, form.course)
    _may_create(request, course, form.visibility)
    kind = actions.kind_of(form.kind, form.task)
    dataset = actions.upload_file(request.user, course, file, form.name, kind, form.visibility)
    return Status(202, {"id": dataset.pk, "status": dataset.status})


@router.get("/datasets", response={200: list[DatasetOut], **errors(*READ, 404)})
def list_datasets(request, course: Id):
    """The datasets of a class the caller may see."""
    course_obj = _course(request, course)
    return [
        dataset_out(request.user, d)
        for d in permissions.visible_datasets(request.user, course_obj).select_related("owner")
    ]


@router.get("/datasets/samples", response={200: list[SampleOut], **errors(401)})
def list_samples(request):
    """The built-in samples (no download needed)."""
    return [
        {
            "key": s.key,
            "kind": s.kind,
            "count": s.count,
            "title": s.title,
            "description": s.description,
        }
        for s in SAMPLES.values()
    ]


@router.post("/datasets/samples", response={202: Created, **errors(*WRITE, 404, 409)})
def copy_sample(request, payload: SampleIn):
    """Copy a built-in sample into a class as a new dataset; poll `GET /datasets/{id}`."""
    course = _course(request, payload.course)
    _may_create(request, course, payload.visibility)
    dataset = actions.copy_sample(
        request.user, course, payload.sample, payload.name, payload.visibility
    )
    return Status(202, {"id": dataset.pk, "status": dataset.status})


@router.get("/datasets/{dataset_id}", response={200: DatasetOut, **errors(*READ, 404)})
def get_dataset(request, dataset_id: Id):
    """A dataset's status, classes and split counts."""
    dataset = _dataset(request, dataset_id)
    return dataset_out(request.user, dataset)


@router.patch("/datasets/{dataset_id}", response={200: DatasetOut, **errors(*WRITE, 404)})
def update_dataset(request, dataset_id: Id, payload: DatasetPatch):
    """Rename a dataset or change who sees it."""
    dataset = _dataset(request, dataset_id, permissions.can_edit_dataset)
    if payload.visibility is not None:
        _may_create(request, dataset.course, payload.visibility)
        actions.set_visibility(dataset, payload.visibility)
    if payload.name is not None:
        actions.rename_dataset(dataset, payload.name)
    return dataset_out(request.user, dataset)


@router.get(
    "/datasets/{dataset_id}/versions", response={200: list[VersionOut], **errors(*READ, 403, 404)}
)
def list_versions(request, dataset_id: Id):
    """Every version of a dataset, with what changed."""
    dataset = _dataset(request, dataset_id, permissions.can_view_images)
    return [
        {
            "number": v.number,
            "created_at": v.created_at,
            "summary": v.summary,
            "counts": v.counts,
            "split_settings": v.split_settings,
        }
        for v in dataset.versions.all()
    ]


@router.get("/datasets/{dataset_id}/items", response={200: ItemsPage, **errors(*READ, 403, 404)})
def list_items(
    request,
    dataset_id: Id,
    split: SplitFilter = "",
    category: ClassFilter = "",
    page: Page = 1,
    version: Id | None = None,
):
    """A page of 100 images with their labels and annotations."""
    dataset = _dataset(request, dataset_id, permissions.can_view_images)
    version = dataset.head if version is None else version
    items = queries.filter_items(queries.items_at(dataset, version), dataset, split, category)
    page = max(1, page)
    rows = list(
        items.select_related("image").prefetch_related("annotations")[(page - 1) * 100 : page * 100]
    )
    names = {c.index: c.name for c in queries.categories_at(dataset, version)}
    return {
        "version": version,
        "page": page,
        "count": items.count(),
        "items": [exports.item_json(dataset, row, names) for row in rows],
    }


@router.post("/datasets/{dataset_id}/edit", response={200: EditOut, **errors(*WRITE, 404, 409)})
def edit_dataset(request, dataset_id: Id, payload: EditIn):
    """Relabel, move, delete, rename or merge classes, or split again: one new version."""
    dataset = _dataset(request, dataset_id, permissions.can_edit_dataset)
    user, op = request.user, payload.op
    if op == "relabel":
        version = actions.relabel(dataset, user, payload.items, payload.category)
    elif op == "move":
        version = actions.move(dataset, user, payload.items, payload.split)
    elif op == "delete":
        version = actions.delete_items(dataset, user, payload.items)
    elif op == "rename_class" and payload.index is not None:
        version = actions.rename_category(dataset, user, payload.index, payload.name)
    elif op == "merge_classes" and payload.source is not None and payload.target is not None:
        version = actions.merge_categories(dataset, user, payload.source, payload.target)
    elif op == "resplit":
        version = actions.resplit(
            dataset,
            user,
            splits.SplitSettings(payload.val, payload.test, payload.seed, payload.folds),
        )
    else:
        raise actions.DatasetError(_("Unknown edit or missing fields."), field="op")
    return {"version": version.number, "summary": version.summary, "counts": version.counts}


@router.get(
    "/datasets/{dataset_id}/export",
    response=errors(*READ, 400, 403, 404),
    openapi_extra=ZIP_ANSWER,
)
def export_dataset(
    request,
    dataset_id: Id,
    format: ExportFormat = "imagefolder",
    version: Id | None = None,
):
    """Stream a ZIP of a version: `imagefolder` (classification) or `coco` (every kind)."""
    dataset = _dataset(request, dataset_id, permissions.can_view_images)
    version = dataset.head if version is None else version
    if not dataset.versions.filter(number=version).exists():
        raise Http404
    chunks, file_name = exports.export(dataset, version, format)
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


# --- chunked, resumable uploads -------------------------------------------------------------


def _upload(request, upload_id: UUID) -> Upload:
    return get_object_or_404(Upload, pk=upload_id, owner=request.user)


def _upload_out(upload: Upload) -> dict:
    return {
        "id": str(upload.pk),
        "file_name": upload.file_name,
        "size": upload.size,
        "received": upload.received,
        "chunk_size": settings.UPLOAD_CHUNK_BYTES,
    }


@router.post("/uploads", response={201: UploadOut, **errors(*WRITE, 404, 409)})
def start_upload(request, payload: UploadIn):
    """Announce a file; then PUT its chunks in order and complete it."""
    course = _course(request, payload.course)
    _may_create(request, course, "private")
    upload = actions.start_upload(request.user, course, payload.file_name, payload.size)
    return Status(201, _upload_out(upload))


@router.get("/uploads/{upload_id}", response={200: UploadOut, **errors(*READ, 404)})
def upload_status(request, upload_id: UUID):
    """How much has arrived: a client resumes from `received`."""
    return _upload_out(_upload(request, upload_id))


@router.put(
    "/uploads/{upload_id}",
    response={200: UploadOut, **errors(*WRITE, 404, 409)},
    openapi_extra=CHUNK_BODY,
)
def upload_chunk(request, upload_id: UUID, offset: Offset):
    """The raw bytes of one chunk (application/octet-stream), starting at `offset`."""
    upload = _upload(request, upload_id)
    data = request.read(settings.UPLOAD_CHUNK_BYTES + 1)
    if len(data) > settings.UPLOAD_CHUNK_BYTES:
        raise HttpError(
            413, _("A chunk may hold at most %(n)s bytes.") % {"n": settings.UPLOAD_CHUNK_BYTES}
        )
    if not data:
        raise actions.DatasetError(_("The chunk is empty."))
    return _upload_out(actions.receive_chunk(upload, offset, data))


@router.post("/uploads/{upload_id}/complete", response={202: Created, **errors(*WRITE, 404, 409)})
def complete_upload(request, upload_id: UUID, payload: CompleteIn):
    """Turn a fully received upload into a dataset; ingest runs on a worker."""
    upload = _upload(request, upload_id)
    _may_create(request, upload.course, payload.visibility)
    kind = actions.kind_of(payload.kind, payload.task)
    dataset = actions.complete_upload(upload, payload.name, kind, payload.visibility)
    return Status(202, {"id": dataset.pk, "status": dataset.status})
