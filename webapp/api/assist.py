"""Model-assisted labelling: `/api/v1/datasets/{id}/assist` (a finished run pre-annotates images
on a worker, into the caller's draft) and `/draft/accept`, `/draft/reject` (settle proposals)."""

import math

from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.errors import HttpError

from webapp.accounts import permissions
from webapp.api.assist_schemas import (
    AcceptIn,
    AcceptOut,
    AssistIn,
    AssistOverview,
    RejectIn,
    RejectOut,
    RoundOut,
)
from webapp.api.base import READ, WRITE, errors
from webapp.api.schemas import Id
from webapp.datasets import drafts
from webapp.datasets.models import Dataset
from webapp.studio import assist
from webapp.studio.models import AssistRound

router = Router(tags=["studio"])


def _dataset(request, dataset_id: int) -> Dataset:
    """The dataset, when the caller may see it (else 404) and draft it (else 403)."""
    dataset = Dataset.objects.select_related("course").filter(pk=dataset_id).first()
    if dataset is None or not (
        permissions.can_view_dataset(request.user, dataset)
        or drafts.may_draft(request.user, dataset)
    ):
        raise Http404
    if not drafts.may_draft(request.user, dataset):
        permissions.require_writable(dataset.course)
        raise HttpError(403, _("You may not annotate this dataset."))
    return dataset


@router.get(
    "/datasets/{dataset_id}/assist", response={200: AssistOverview, **errors(*READ, 403, 404)}
)
def assist_overview(request, dataset_id: Id):
    """The runs you may pre-annotate this dataset with (finished, of its class and kind: your
    own, or any of the class's for its teachers and TAs) and your last rounds."""
    dataset = _dataset(request, dataset_id)
    runs = assist.usable_runs(request.user, dataset)[: assist.RUNS_LISTED]
    return {
        "runs": [assist.run_out(job) for job in runs],
        "rounds": [assist.round_out(r) for r in assist.latest_rounds(request.user, dataset)],
        "max_limit": assist.MAX_LIMIT,
        "default_limit": assist.DEFAULT_LIMIT,
    }


@router.post("/datasets/{dataset_id}/assist", response={202: RoundOut, **errors(*WRITE, 404, 409)})
def start_assist(request, dataset_id: Id, payload: AssistIn):
    """Start a round: a worker runs the model on up to `limit` images (unlabelled first, none
    that already has a proposal waiting) and writes its answers into your draft as proposals
    with scores. Answers at once; follow the round at `GET .../assist/{round_id}`. 409 while
    another round of yours on this dataset runs."""
    dataset = _dataset(request, dataset_id)
    language = translation.get_language() or "en"
    round_ = assist.start_round(request.user, dataset, payload.job, payload.limit, language)
    return Status(202, assist.round_out(round_))


@router.get(
    "/datasets/{dataset_id}/assist/{round_id}", response={200: RoundOut, **errors(*READ, 403, 404)}
)
def assist_round(request, dataset_id: Id, round_id: Id):
    """A round's progress: images answered of its total, proposals written, status."""
    dataset = _dataset(request, dataset_id)
    round_ = AssistRound.objects.filter(pk=round_id, dataset=dataset, user=request.user).first()
    if round_ is None:
        raise Http404
    return assist.round_out(round_)


@router.post(
    "/datasets/{dataset_id}/draft/accept", response={200: AcceptOut, **errors(*WRITE, 404)}
)
def accept_proposals(request, dataset_id: Id, payload: AcceptIn):
    """Accept every proposal of your draft scoring at least `threshold`: each becomes a plain
    annotation (or, for classification, the image's label), committed with your next commit."""
    dataset = _dataset(request, dataset_id)
    accepted = drafts.accept_above(dataset, request.user, payload.threshold)
    return {"accepted": accepted, "proposals": drafts.summary(dataset, request.user)["proposals"]}


@router.post(
    "/datasets/{dataset_id}/draft/reject", response={200: RejectOut, **errors(*WRITE, 404)}
)
def reject_proposals(request, dataset_id: Id, payload: RejectIn):
    """Reject the proposals of your draft scoring below `below` (all of them without it): they
    leave the draft; what you accepted or drew stays."""
    dataset = _dataset(request, dataset_id)
    below = math.inf if payload.below is None else payload.below
    rejected = drafts.reject_below(dataset, request.user, below)
    return {"rejected": rejected, "proposals": drafts.summary(dataset, request.user)["proposals"]}
