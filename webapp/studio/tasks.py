"""Model-assisted labelling on a worker: a finished run pre-annotates a round's images.

The round's images are opened from storage and handed to the run's loop in batches
(`trainer.inference.predict`, the same seam as Try it: models load from `model.safetensors` and
`model_card.json`, nothing is unpickled); each answer becomes proposals
(`webapp.studio.proposals`) written into the person's draft (`drafts.write_proposals`), and the
round's progress is saved after every batch for the page that polls it.
"""

import logging

from celery import shared_task
from django.core.files.storage import default_storage
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from webapp.datasets import drafts
from webapp.datasets.models import Item
from webapp.jobs import kinds
from webapp.jobs.predict import model_dir
from webapp.studio import proposals
from webapp.studio.models import OPEN, AssistRound, RoundStatus

log = logging.getLogger(__name__)


class RoundFailed(Exception):
    """A round that cannot go on, with the reason for the student."""


def classes_of(dataset, user) -> proposals.Classes:
    """The dataset's classes (the head's and the person's draft's new ones) by name."""
    rows = drafts.categories(dataset, drafts.draft_of(dataset, user))
    return proposals.Classes(
        index={row["name"]: row["index"] for row in rows},
        keypoints={row["index"]: list(row["keypoints"]) for row in rows if row["keypoints"]},
    )


def _open(item: Item) -> Image.Image | None:
    """The item's stored image, decoded (None when its file is gone or unreadable)."""
    try:
        with default_storage.open(item.image.file) as stream:
            image = Image.open(stream)
            image.load()
            return image
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def _answers(kind: str, job_id: int, images: list[Image.Image]) -> list[dict]:
    """The run's answer for each image (torch is imported on workers only)."""
    from trainer import inference
    from trainer.memory import out_of_memory
    from trainer.scoring import ModelUnavailable

    try:
        return inference.predict(kind, model_dir(job_id), images)
    except (OSError, KeyError, ModelUnavailable):
        raise RoundFailed(_("The run's model files are gone; train the run again.")) from None
    except Exception as exc:
        if out_of_memory(exc):
            raise RoundFailed(
                _("The model and these images did not fit in the worker's memory.")
            ) from None
        raise


def _annotate(round_: AssistRound) -> None:
    dataset, kind = round_.dataset, round_.dataset.kind
    classes = classes_of(dataset, round_.user)
    size = kinds.view(kind).assist_batch  # images per call to the model
    waiting = list(round_.items)[round_.done :]  # a redelivered task goes on where it stopped
    for start in range(0, len(waiting), size):
        uids = waiting[start : start + size]
        found = Item.objects.filter(dataset=dataset, valid_to__isnull=True, uid__in=uids)
        by_uid = {str(item.uid): item for item in found.select_related("image")}
        opened = [(uid, _open(by_uid[uid])) for uid in uids if uid in by_uid]
        opened = [(uid, image) for uid, image in opened if image is not None]
        written = 0
        if opened:
            answers = _answers(kind, round_.job_id, [image for _, image in opened])
            rows = [
                row
                for (uid, _image), answer in zip(opened, answers, strict=True)
                for row in proposals.proposals_of(kind, answer, uid, classes)
            ]
            if rows:
                written = drafts.write_proposals(dataset, round_.user, round_.job_id, rows)
        round_.done += len(uids)
        round_.proposed += written
        round_.save(update_fields=["done", "proposed"])


@shared_task(name="studio.assist")
def assist(round_id: int, language: str = "en") -> None:
    """Pre-annotate a round's images with its run; its status says how it went."""
    round_ = (
        AssistRound.objects.select_related("dataset", "user", "job").filter(pk=round_id).first()
    )
    if round_ is None or round_.status not in OPEN:
        return
    round_.status = RoundStatus.RUNNING
    round_.save(update_fields=["status"])
    with translation.override(language):
        try:
            _annotate(round_)
        except RoundFailed as failed:
            round_.status, round_.error = RoundStatus.FAILED, str(failed)
        except Exception:
            log.exception("assist round %s failed", round_id)
            round_.status = RoundStatus.FAILED
            round_.error = _("Pre-annotation stopped on an unexpected error; try again.")
        else:
            round_.status = RoundStatus.DONE
    round_.finished_at = timezone.now()
    round_.save(update_fields=["status", "error", "finished_at"])
