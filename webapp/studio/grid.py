"""The studio's entry page: a classification dataset's thumbnail grid (classes by number key),
or, for the other kinds, the canvas of the first image in the queue.

The grid page holds no thumbnails itself: static/js/studio/grid.js reads them a page at a time
from the studio API (`GET studio/items`, bounded) and saves labels as draft changes through the
shared autosave. The page renders what the API has no call for: the class counts of the caller's
draft view (only their given images for a student labelling a pool) and the draft's size.
"""

from collections import Counter

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from webapp.accounts import permissions
from webapp.datasets import drafts, queries
from webapp.datasets.models import Dataset, Draft, Status
from webapp.jobs import kinds
from webapp.labelling.access import assigned_items

PAGE_SIZE = 100  # thumbnails per page the grid asks the API for (the API allows up to 200)
CLASS_KEYS = "1234567890"  # the first ten classes have a number key, 0 for the tenth


def _studio_dataset(request, dataset_id: int) -> Dataset:
    """The dataset if the caller may open it in the studio: 404 when they may not even see it,
    403 for a summary-only view (a student and a hidden test set)."""
    dataset = Dataset.objects.select_related("course", "owner").filter(pk=dataset_id).first()
    if dataset is None:
        raise Http404
    if drafts.may_open(request.user, dataset):
        return dataset
    if permissions.can_view_dataset(request.user, dataset):
        raise PermissionDenied
    raise Http404


def _items(dataset: Dataset, user, given_only: bool):
    """The current images the caller works on (only their given ones, for a pool)."""
    items = queries.items_at(dataset)
    if given_only:
        items = items.filter(uid__in=assigned_items(user, dataset))
    return items


def _counts(dataset: Dataset, user, given_only: bool, draft: Draft | None) -> tuple[dict, int]:
    """Images per class index in the caller's view, and how many have no class.

    The whole dataset's figures are the cached head counts corrected by the draft's labels (the
    images it touched), so a 60,000-image dataset costs no scan; a pool student's come from their
    given images only, so the page says nothing about anybody else's.
    """
    if given_only:
        uids = [str(uid) for uid in _items(dataset, user, True).values_list("uid", flat=True)]
        if draft is not None:
            labels = drafts.labels_of(draft, uids)
        else:
            rows = _items(dataset, user, True).values_list("uid", "category_index")
            labels = {str(uid): category for uid, category in rows}
        tally = Counter(labels.values())
        unlabelled = tally.pop(None, 0)
        return dict(tally), unlabelled
    tally = Counter({row["index"]: row["count"] for row in queries.class_counts(dataset)})
    unlabelled = queries.image_count(dataset) - sum(tally.values())
    if draft is not None:
        after = drafts.labels_of(draft)  # the images the draft touched
        before = dict(
            (str(uid), category)
            for uid, category in _items(dataset, user, False)
            .filter(uid__in=list(after))
            .values_list("uid", "category_index")
        )
        for uid, old in before.items():
            new = after[uid]
            tally[old] -= old is not None
            tally[new] += new is not None
            unlabelled += (new is None) - (old is None)
    tally.pop(None, None)
    return {index: n for index, n in tally.items() if n > 0}, max(unlabelled, 0)


def _first_item(dataset: Dataset, user, queue: str):
    """The uid of the first image in that queue of the caller's view, or None."""
    if queue not in drafts.QUEUES:
        queue = "all"
    page = drafts.queue(dataset, user, queue, offset=0, limit=1)
    return page["items"][0]["uid"] if page["items"] else None


@login_required
def studio_home(request, dataset_id: int):
    """The studio's entry: the label grid (classification) or the first image's canvas."""
    dataset = _studio_dataset(request, dataset_id)
    user = request.user
    ready = dataset.status == Status.READY and dataset.head > 0
    given_only = drafts.assigned_only(user, dataset)
    on_grid = kinds.shape(dataset.kind).one_label_per_image  # else: each image's canvas
    if ready and not on_grid:
        first = _first_item(dataset, user, request.GET.get("queue", "all"))
        if first is not None:
            return redirect("studio_item", dataset_id=dataset.pk, item_uid=first)
    if not ready or not on_grid:
        return render(
            request,
            "studio/grid.html",
            {"dataset": dataset, "course": dataset.course, "empty": True, "ready": ready},
        )
    editable = drafts.may_draft(user, dataset)
    draft = drafts.draft_of(dataset, user) if editable else None
    counts, unlabelled = _counts(dataset, user, given_only, draft)
    summary = drafts.summary(dataset, user) if editable else {"changes": 0}
    api = f"/api/v1/datasets/{dataset.pk}"
    queue = request.GET.get("queue", "all")
    config = {
        "dataset": dataset.pk,
        "csrf": get_token(request),
        "api": {
            "items": f"{api}/studio/items",
            "categories": f"{api}/studio/categories",
            "changes": f"{api}/draft/changes",
            "draft": f"{api}/draft",
            "commit": f"{api}/draft/commit",
        },
        "storageKey": f"manabi-studio-{dataset.pk}-{user.pk}",
        "pageSize": PAGE_SIZE,
        "queue": queue if queue in drafts.QUEUES else "all",
        "keys": CLASS_KEYS,
        "editable": editable,
        "mayCommit": drafts.may_commit(user, dataset) and editable,
        "mayAddClass": drafts.may_commit(user, dataset) and editable,
        "counts": {str(index): n for index, n in counts.items()},
        "unlabelled": unlabelled,
        "changes": summary["changes"],
        "trainUrl": reverse("dataset_train", args=[dataset.pk]),
        "words": _words(),
    }
    return render(
        request,
        "studio/grid.html",
        {
            "dataset": dataset,
            "course": dataset.course,
            "empty": False,
            "ready": True,
            "given_only": given_only,
            "editable": editable,
            "may_commit": config["mayCommit"],
            "may_add_class": config["mayAddClass"],
            "config": config,
        },
    )


def _words() -> dict[str, str]:
    """The grid's strings for grid.js, translated here (the page's language)."""
    return {
        "unlabelled": _("unlabelled"),
        "proposal": _("Proposed: %(name)s (%(score)s)"),
        "image": _("Image %(n)s"),
        "range": _("%(first)s–%(last)s of %(total)s"),
        "none": _("No images here."),
        "changes": _("%(n)s changes in your draft"),
        "changesOne": _("1 change in your draft"),
        "changesNone": _("No changes in your draft"),
        "saved": _("Saved"),
        "saving": _("Saving…"),
        "error": _("Not saved — sign in again or reload the page"),
        "offline": _("Offline — your changes are kept and sent when the connection is back"),
        "conflict": _("Conflict — somebody committed this meanwhile; reload to see both"),
        "notSaved": _("Some changes are not saved yet (offline?); try again in a moment."),
        "committed": _("Version %(n)s committed."),
        "conflictLine": _("Yours: “%(yours)s”, theirs: “%(theirs)s”"),
        "keepMine": _("Keep mine"),
        "takeTheirs": _("Take theirs"),
        "trainOn": _("Train on it"),
        "loadFailed": _("The images could not be loaded; try again."),
        "failed": _("That did not work: %(detail)s"),
        "classAdded": _("Class “%(name)s” added."),
        "noClassKey": _("No class has the key %(key)s."),
        "assigned": _("%(n)s images labelled “%(name)s”."),
        "cleared": _("Label cleared on %(n)s images."),
        "accepted": _("%(n)s proposals accepted."),
        "nothingToAccept": _("The selected images have no proposal."),
        "undone": _("Undone."),
        "redone": _("Redone."),
        "selected": _("%(n)s selected"),
    }
