"""Ingest with helper processes stores the same images as ingest in one process."""

import numpy as np
import pytest

from tests.conftest import make_course, make_user
from webapp.datasets import ingest, splits
from webapp.datasets.models import Dataset
from webapp.datasets.records import Rejection, SourceImage

pytestmark = pytest.mark.django_db


def _records(count: int):
    rng = np.random.default_rng(0)
    for i in range(count):
        yield SourceImage(
            path=f"{'ab'[i % 2]}/{i}.png",
            pixels=rng.integers(0, 255, (24, 24), dtype=np.uint8),
            label="ab"[i % 2],
        )
    yield SourceImage(path="bad.png", read=lambda: b"not an image", label="a")
    yield Rejection("link.png", "Links are not allowed in a ZIP.")


@pytest.mark.parametrize("processes", [1, 2])
def test_helper_processes_store_the_same_dataset(settings, tmp_path, processes):
    settings.MEDIA_ROOT = tmp_path / f"media-{processes}"
    teacher = make_user(f"t{processes}", teacher=True)
    dataset = Dataset.objects.create(
        course=make_course(teacher), owner=teacher, name="pool", kind="classification"
    )
    run = ingest.Ingest(dataset, ingest.Categories(), processes=processes)
    run.run(_records(700))  # more than one window: rows of one while the next is prepared
    run.finish(splits.SplitSettings())
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.items.count() == 700
    assert {r.path for r in run.report.rejected} == {"bad.png", "link.png"}
    stored = list((tmp_path / f"media-{processes}" / "images").rglob("*.png"))
    assert len(stored) == 700  # written where the parent's settings say, by every helper
    assert not list((tmp_path / f"media-{processes}").rglob("*.part"))
