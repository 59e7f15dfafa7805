"""The job page says what became of a transfer source's classifier: kept, reordered or new."""

import html
import re

import pytest

from webapp.datasets import actions as dataset_actions
from webapp.datasets import queries
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import actions, tasks
from webapp.jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05}


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


def _faces(world, name):
    dataset = dataset_actions.copy_sample(world.alice, world.course, "faces", name=name)
    dataset_tasks.copy_sample(dataset.pk, "faces", "en")
    dataset.refresh_from_db()
    return dataset


def _trained(world, dataset, spec) -> Job:
    job = actions.submit(world.alice, dataset, spec)
    tasks.train(job.pk)  # inline: the trainer runs here and its events are stored
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def _notice(world, job, language) -> str | None:
    """The text of the page's classifier notice as it is served; None while it is hidden."""
    client = world.client("alice")
    page = client.get(f"/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f'<html lang="{language}">' in page
    attributes, text = re.search(r'<p id="head-notice"([^>]*)>(.*?)</p>', page, re.S).groups()
    return None if " hidden" in attributes else html.unescape(text)


def test_a_transfer_to_other_class_names_says_new_classifier_on_the_job_page(world):
    source = _trained(world, _faces(world, "faces"), SPEC)
    renamed = _faces(world, "renamed")
    for index, category in enumerate(queries.categories_at(renamed, renamed.head)):
        dataset_actions.rename_category(renamed, world.alice, category.index, f"kind {index}")
        renamed.refresh_from_db()
    transfer = {"source": f"job:{source.pk}", "mode": "feature_extraction"}
    job = _trained(world, renamed, {**SPEC, "transfer": transfer})

    started = JobEvent.objects.get(job=job, kind="started").data
    assert (started["head"], started["head_reason"]) == ("new", "classes_differ")
    assert _notice(world, job, "en") == "New classifier: the classes differ from the source's."
    assert _notice(world, job, "ja") == "新しい分類器：転移元とクラスが異なります。"
    # The same classes keep the classifier, and the page says that instead.
    again = _trained(world, source.dataset, {**SPEC, "transfer": transfer})
    assert JobEvent.objects.get(job=again, kind="started").data["head"] == "kept"
    assert _notice(world, again, "en").startswith("Classifier kept from the source")
    assert _notice(world, again, "ja").startswith("転移元の分類器をそのまま使います")


def test_a_run_without_a_transfer_shows_no_classifier_notice(world):
    job = _trained(world, _faces(world, "faces"), SPEC)
    assert "head" not in JobEvent.objects.get(job=job, kind="started").data
    assert _notice(world, job, "en") is None  # the live page fills it when a transfer starts
