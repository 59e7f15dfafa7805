"""The annotation studio's canvas page: one image of a dataset, its tools, autosave, drafts."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render

from webapp.accounts import permissions
from webapp.datasets import drafts, queries
from webapp.datasets.models import Dataset, Draft
from webapp.jobs import kinds
from webapp.labelling.access import assigned_items, is_assigned
from webapp.studio.words import studio_words


def _queue_position(user, dataset: Dataset, item) -> int:
    """Where the image stands in the "all" queue (a hint: the page checks it against the API)."""
    items = queries.items_at(dataset)
    if drafts.assigned_only(user, dataset):
        items = items.filter(uid__in=assigned_items(user, dataset))
    before = Q(original_path__lt=item.original_path) | Q(
        original_path=item.original_path, uid__lt=item.uid
    )  # the queue's order, drafts.ORDER
    return items.filter(before).count()


def _oks_defaults() -> dict:
    """The trainer's default OKS sigmas as a rule the keypoint editor applies to the names it
    edits: COCO's own for COCO's 17 names in order, else one value for every point."""
    from trainer.keypoint_metrics import COCO_NAMES, COCO_SIGMAS, DEFAULT_SIGMA

    return {"sigma": DEFAULT_SIGMA, "coco_names": COCO_NAMES, "coco_sigmas": COCO_SIGMAS}


def _draft_changes(draft: Draft | None) -> int:
    """The draft's changes, as its API counts them (a model's proposals left out)."""
    return draft.changes.exclude(data__has_key="proposal").count() if draft else 0


@login_required
def studio_item(request, dataset_id: int, item_uid: UUID):
    """The canvas: view the image and its annotations; edit them where drafting is allowed."""
    dataset = Dataset.objects.select_related("course").filter(pk=dataset_id).first()
    if dataset is None:
        raise Http404
    if not drafts.may_open(request.user, dataset):
        # A student sees a hidden test set's summary, never its images: refused, not hidden.
        if permissions.can_view_dataset(request.user, dataset):
            raise PermissionDenied
        raise Http404
    item = queries.items_at(dataset).filter(uid=item_uid).select_related("image").first()
    if item is None:
        raise Http404
    if drafts.assigned_only(request.user, dataset) and not is_assigned(
        request.user, dataset, item_uid
    ):
        raise Http404  # a pool student sees only the images given to them
    editable = drafts.may_draft(request.user, dataset, item_uid)
    queue = request.GET.get("queue", "all")
    draft = drafts.draft_of(dataset, request.user) if editable else None
    categories = drafts.categories(dataset, draft)
    api = f"/api/v1/datasets/{dataset.pk}"
    config = {
        "dataset": dataset.pk,
        "dataset_name": dataset.shown_name,
        "kind": dataset.kind,
        "item": str(item.uid),
        "position": _queue_position(request.user, dataset, item),
        "queue": queue if queue in drafts.QUEUES else "all",
        "editable": editable,
        "may_commit": editable and drafts.may_commit(request.user, dataset),
        "csrf": get_token(request),
        "storage_key": f"manabi-studio-{dataset.pk}-{request.user.pk}",
        "categories": categories,
        "words": studio_words(),
        "urls": {
            "item": f"{api}/studio/items/",
            "items": f"{api}/studio/items",
            "categories": f"{api}/studio/categories",
            "draft": f"{api}/draft",
            "changes": f"{api}/draft/changes",
            "commit": f"{api}/draft/commit",
            "resolve": f"{api}/draft/resolve",
            "page": f"/datasets/{dataset.pk}/studio/",
        },
    }
    if dataset.shape.has_keypoints:
        config["oks_defaults"] = _oks_defaults()  # the σ placeholders of the keypoint editor
    tools = [
        {"name": name, "label": config["words"][f"tool-{name}"]}
        for name in kinds.view(dataset.kind).tools  # the toolbar's, in its order
    ]
    return render(
        request,
        "studio/item.html",
        {
            "dataset": dataset,
            "course": dataset.course,
            "item": item,
            "config": config,
            "tools": tools,
            "editable": editable,
            "may_commit": config["may_commit"],
            "draft_changes": _draft_changes(draft),
        },
    )
