"""The "Pre-annotate with a model" panel's data for templates/studio/_assist.html."""

from django import template
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.translation import gettext as _

from webapp.datasets import drafts
from webapp.studio import assist
from webapp.studio.models import OPEN

register = template.Library()


def _words() -> dict[str, str]:
    """The panel's strings for static/js/studio/assist.js, in the page's language."""
    return {
        "queued": _("Waiting for a worker…"),
        "running": _("Pre-annotating: %(done)s of %(total)s images, %(proposed)s proposals"),
        "done": _("Done: %(proposed)s proposals on %(total)s images."),
        "failed": _("Stopped: %(error)s"),
        "waiting": _("Proposals waiting in your draft: %(n)s"),
        "accepted": _("%(n)s proposals accepted."),
        "rejected": _("%(n)s proposals rejected."),
        "refused": _("That did not work: %(detail)s"),
        "offline": _("The server cannot be reached; try again in a moment."),
    }


@register.simple_tag(takes_context=True)
def assist_panel(context, dataset) -> dict | None:
    """The runs the reader may pre-annotate this dataset with, their latest round and the
    proposals waiting; None when they may not annotate it (the panel is left out)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if dataset is None or user is None or not drafts.may_draft(user, dataset):
        return None
    if drafts.assigned_only(user, dataset):  # a labelling student's own labels are asked for
        return None
    runs = [assist.run_out(job) for job in assist.usable_runs(user, dataset)[: assist.RUNS_LISTED]]
    latest = assist.latest_rounds(user, dataset, 1)
    round_ = assist.round_out(latest[0]) if latest else None
    waiting = drafts.summary(dataset, user)["proposals"]
    return {
        "runs": runs,
        "staff": any(run["owner"] != user.username for run in runs),
        "round": round_,
        "busy": bool(round_ and round_["status"] in OPEN),
        "waiting": waiting,
        "max_limit": assist.MAX_LIMIT,
        "default_limit": assist.DEFAULT_LIMIT,
        "train_url": reverse("dataset_train", args=[dataset.pk]),
        "config": {
            "api": f"/api/v1/datasets/{dataset.pk}",
            "csrf": get_token(request),
            "round": round_,
            "waiting": waiting,
            "words": _words(),
        },
    }
