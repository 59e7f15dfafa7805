"""The Train page's transfer-source picker names each earlier run by its kind's own figure
(accuracy, mAP@0.5, mIoU, PCK), not "accuracy" for every kind."""

import pytest

from webapp.datasets.models import Dataset
from webapp.jobs import kinds, launch
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def _label(world, kind: str, metrics: dict) -> str:
    dataset = Dataset(name="shapes", kind=kind)
    run = Job(pk=7, dataset=dataset, dataset_version=2, spec={"kind": kind}, metrics=metrics)
    run.owner_id = world.alice.pk
    return launch._run_option(world.alice, run, dataset)["label"]


@pytest.mark.parametrize(
    ("kind", "metrics", "value"),
    [
        ("classification", {"test_accuracy": 0.9, "val_accuracy": 0.5}, 0.9),
        ("detection", {"test_map50": 0.25, "val_map50": 0.5}, 0.25),
        ("segmentation", {"val_miou": 0.5}, 0.5),  # no test split: validation's
        ("keypoints", {"test_pck": 0.75}, 0.75),
    ],
)
def test_each_run_is_named_by_its_kinds_primary_figure(world, kind, metrics, value):
    figure = kinds.primary(kind)
    label = _label(world, kind, metrics)
    assert label.startswith("#7 ") and "shapes v2" in label
    assert label.endswith(f"{figure.label} {figure.text(value)}"), label
    if kind != "classification":
        assert "ccuracy" not in label


def test_a_run_without_figures_gets_none(world):
    assert _label(world, "detection", {}).endswith("shapes v2")
