"""`/api/v1/datasets/{id}/studio/*` and `/draft*`: the annotation studio's reads and deltas.

Each save of the studio is a small batch of deltas into the caller's draft; a commit turns the
draft into one new version. See webapp/datasets/drafts.py for the rules and conflicts.
"""

from typing import Literal

from django.http import Http404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from webapp.api.base import READ, WRITE, errors
from webapp.api.dataset_schemas import Offset
from webapp.api.schemas import Id
from webapp.api.studio_schemas import (
    CategoryIndex,
    CategoryOut,
    ChangesIn,
    ChangesOut,
    CommitConflictOut,
    CommitIn,
    CommitOut,
    DraftOut,
    ItemView,
    KeypointsIn,
    QueuePage,
    ResolveIn,
    ResolveOut,
    Uuid,
)
from webapp.datasets import actions, drafts
from webapp.datasets.models import Dataset

router = Router(tags=["studio"])


class QueueQuery(Schema):
    queue: Literal["all", "unlabelled", "least_confident"] = "all"
    offset: Offset = 0
    limit: int = Field(100, ge=1, le=200)


class VersionQuery(Schema):
    version: int | None = Field(None, ge=1, le=2**31 - 1)


def _dataset(request, dataset_id: int) -> Dataset:
    """A dataset the caller may open in the studio (404 for anything else, as elsewhere)."""
    dataset = Dataset.objects.select_related("course").filter(pk=dataset_id).first()
    if dataset is None or not drafts.may_open(request.user, dataset):
        raise Http404
    return dataset


@router.get("/datasets/{dataset_id}/studio/items", response={200: QueuePage, **errors(*READ, 404)})
def studio_items(request, dataset_id: Id, query: Query[QueueQuery]):
    """A page of the images to label, in the caller's draft view, in the queue's order."""
    dataset = _dataset(request, dataset_id)
    return drafts.queue(dataset, request.user, query.queue, query.offset, query.limit)


@router.get(
    "/datasets/{dataset_id}/studio/items/{item_uid}",
    response={200: ItemView, **errors(*READ, 404)},
)
def studio_item(request, dataset_id: Id, item_uid: Uuid, query: Query[VersionQuery]):
    """One image and its annotations: at a version, or in the caller's draft over the head."""
    dataset = _dataset(request, dataset_id)
    return drafts.item_view(dataset, request.user, item_uid, query.version)


@router.get(
    "/datasets/{dataset_id}/studio/categories",
    response={200: list[CategoryOut], **errors(*READ, 404)},
)
def studio_categories(request, dataset_id: Id):
    """The classes: the head's and the ones the caller's draft adds."""
    dataset = _dataset(request, dataset_id)
    draft = (
        drafts.draft_of(dataset, request.user) if drafts.may_draft(request.user, dataset) else None
    )
    return drafts.categories(dataset, draft)


@router.post(
    "/datasets/{dataset_id}/draft/changes",
    response={200: ChangesOut, **errors(*WRITE, 404, 409)},
)
def apply_changes(request, dataset_id: Id, payload: ChangesIn):
    """Save deltas into the caller's draft. Good changes are kept when others are refused
    (each refusal names its index and field); a change made on an older revision than the
    committed one is kept and reported as a conflict."""
    dataset = _dataset(request, dataset_id)
    changes = [change.dict(exclude_none=True) for change in payload.changes]
    for change in changes:
        if isinstance(change.get("data"), dict):
            data = change["data"]
            data.setdefault("bbox", None)
            data.setdefault("segmentation", None)
            data.setdefault("keypoints", None)
    return drafts.apply(dataset, request.user, changes)


@router.get("/datasets/{dataset_id}/draft", response={200: DraftOut, **errors(*READ, 404)})
def get_draft(request, dataset_id: Id):
    """The caller's draft: changes, images touched, proposals waiting, conflicts."""
    dataset = _dataset(request, dataset_id)
    return drafts.summary(dataset, request.user)


@router.delete("/datasets/{dataset_id}/draft", response={204: None, **errors(*WRITE, 404)})
def discard_draft(request, dataset_id: Id):
    """Throw the caller's draft away (committed versions are untouched)."""
    dataset = _dataset(request, dataset_id)
    drafts.discard(dataset, request.user)
    return Status(204, None)


@router.post(
    "/datasets/{dataset_id}/draft/commit",
    response={201: CommitOut, 409: CommitConflictOut, **errors(*WRITE, 404)},
)
def commit_draft(request, dataset_id: Id, payload: CommitIn):
    """Commit the caller's draft as one new version (proposals not yet accepted stay behind).
    409 lists the conflicts to settle first."""
    dataset = _dataset(request, dataset_id)
    try:
        version = drafts.commit(dataset, request.user, payload.message)
    except drafts.DraftConflict as conflict:
        return Status(
            409, {"detail": conflict.message, "errors": {}, "conflicts": conflict.conflicts}
        )
    return Status(201, {"version": version.number})


@router.post(
    "/datasets/{dataset_id}/draft/resolve",
    response={200: ResolveOut, **errors(*WRITE, 404)},
)
def resolve_conflict(request, dataset_id: Id, payload: ResolveIn):
    """Settle a conflict: keep mine (on top of their newer revision) or take theirs."""
    dataset = _dataset(request, dataset_id)
    return drafts.resolve(dataset, request.user, payload.uid, payload.keep)


@router.put(
    "/datasets/{dataset_id}/categories/{index}/keypoints",
    response={200: CategoryOut, **errors(*WRITE, 404)},
)
def set_keypoints(request, dataset_id: Id, index: CategoryIndex, payload: KeypointsIn):
    """Rename, add or remove a class's keypoints, its skeleton (1-based pairs) and its OKS
    sigmas: a new version at once; skeletons keep their points by `sources` (or by name),
    drafts' too."""
    dataset = _dataset(request, dataset_id)
    category = actions.set_keypoints(
        dataset,
        request.user,
        index,
        payload.keypoints,
        payload.skeleton,
        payload.sources,
        sigmas=payload.sigmas,
    )
    return {
        "index": category.index,
        "name": category.name,
        "keypoints": category.keypoints,
        "skeleton": category.skeleton,
        "sigmas": category.sigmas or [],
    }
