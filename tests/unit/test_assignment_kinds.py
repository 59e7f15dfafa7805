"""Segmentation assignments scored by mIoU and keypoints assignments by OKS AP: the metric the
form offers for each kind, the scorer each kind's submission goes to, and the migration.

The trainer's `trainer.loops.<kind>.score(model_dir, items, classes, keypoints)` (the issue 12
contract) is replaced by a fake here: these tests check what the web app hands it and keeps of
its answer. Where a loop module is not written yet, the fake stands in for the whole module.
"""

import importlib
import io
import sys
import types
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.unit.test_assignments import (
    _form,
    add_images,
    make_assignment,
    make_dataset,
    make_job,
)
from webapp.assignments import actions, forms, scoring
from webapp.assignments.models import Assignment, Metric, Submission
from webapp.datasets.models import Annotation, Category, Item
from webapp.jobs import kinds

pytestmark = pytest.mark.django_db
SHAPES = ["circle", "square"]
NAMES = ["head", "neck", "left_hand"]
SKELETON = [[1, 2], [2, 3]]
# What the lead's webapp/jobs/kinds.py ASSIGNMENT_METRICS holds for the new kinds (contract).
NEW_METRICS = {kinds.SEGMENTATION: ("miou",), kinds.KEYPOINTS: ("oks_ap",)}


@pytest.fixture(autouse=True)
def _every_kind_scored(monkeypatch):
    """Segmentation and keypoints assignments as the contract has them, whether or not the lead's
    kinds.py and the trainer's loops have landed yet in this tree."""
    for kind, metrics in NEW_METRICS.items():
        monkeypatch.setitem(kinds.ASSIGNMENT_METRICS, kind, metrics)
    monkeypatch.setattr(forms, "trainable", lambda: kinds.trainer_kinds.KINDS)


def _pair(world, kind: str, classes: list[str]):
    dataset = make_dataset(world, name=f"{kind} data", classes=classes, kind=kind)
    hidden = make_dataset(
        world, visibility="hidden_test", name=f"{kind} secret", classes=classes, kind=kind
    )
    return dataset, hidden


class FakeEvaluation:
    def __init__(self, figures: dict):
        self.figures = figures

    def to_dict(self) -> dict:
        return dict(self.figures)


def fake_loop(monkeypatch, kind: str, figures: dict) -> dict:
    """Replace trainer.loops.<kind>.score; returns what it was called with, once it is."""
    seen: dict = {}

    def score(model_dir, items, classes, keypoints):
        seen.update(model_dir=model_dir, items=items, classes=classes, keypoints=keypoints)
        return FakeEvaluation(figures)

    try:
        module = importlib.import_module(f"trainer.loops.{kind}")
    except ModuleNotFoundError:  # not written yet: the fake is the whole module
        import trainer.loops

        module = types.ModuleType(f"trainer.loops.{kind}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(trainer.loops, kind, module, raising=False)
    monkeypatch.setattr(module, "score", score, raising=False)
    return seen


# --- the form offers the metric of the dataset's kind ------------------------------------------


def test_the_metrics_are_offered_grouped_by_the_kind_they_score(world):
    form = forms.AssignmentForm(course=world.course)
    groups = {
        str(label): [value for value, _ in options]
        for label, options in form.fields["metric"].choices
    }
    assert groups == {
        "Classification": ["accuracy", "macro_f1"],
        "Object detection": ["map50"],
        "Segmentation": ["miou"],
        "Keypoints (pose)": ["oks_ap"],
    }
    html = world.client("teacher").get(f"/courses/{world.course.pk}/assignments/new/")
    body = html.content.decode()
    assert (
        '<optgroup label="Segmentation">' in body and '<option value="miou">mIoU</option>' in body
    )
    assert '<option value="oks_ap">OKS AP</option>' in body


def test_an_assignments_metric_stays_offered_when_its_kind_no_longer_is(world, monkeypatch):
    dataset, hidden = _pair(world, kinds.KEYPOINTS, ["person"])
    assignment = make_assignment(world, dataset=dataset, hidden_test=hidden, metric="oks_ap")
    monkeypatch.setattr(forms, "trainable", lambda: ("classification",))
    choices = (
        forms.AssignmentForm(course=world.course, instance=assignment).fields["metric"].choices
    )
    assert [value for value, _ in choices[0][1]] == ["accuracy", "macro_f1"]
    assert choices[-1] == ("oks_ap", Metric.OKS_AP.label)


@pytest.mark.parametrize(
    ("kind", "classes", "metric", "label"),
    [
        (kinds.SEGMENTATION, SHAPES, "miou", "mIoU"),
        (kinds.KEYPOINTS, ["person"], "oks_ap", "OKS AP"),
    ],
)
def test_a_new_kinds_assignment_is_scored_by_its_metric_only(world, kind, classes, metric, label):
    dataset, hidden = _pair(world, kind, classes)
    client = world.client("teacher")
    url = f"/courses/{world.course.pk}/assignments/new/"
    html = client.post(url, _form(dataset, hidden, metric="accuracy")).content.decode()
    name = kinds.kind_name(kind)
    assert f"An assignment on a dataset for {name} is scored by {label}." in html
    assert not Assignment.objects.exists()
    assert client.post(url, _form(dataset, hidden, metric=metric)).status_code == 302
    assert Assignment.objects.get().metric == metric
    detection, hidden_boxes = _pair(world, kinds.DETECTION, classes)
    html = client.post(url, _form(detection, hidden_boxes, metric=metric)).content.decode()
    assert "is scored by mAP@0.5" in html


def test_a_kind_no_assignment_scores_is_named_with_the_kinds_that_are(world, monkeypatch):
    monkeypatch.delitem(kinds.ASSIGNMENT_METRICS, kinds.KEYPOINTS)
    dataset, hidden = _pair(world, kinds.KEYPOINTS, ["person"])
    with pytest.raises(actions.AssignmentRefused) as refused:
        actions.check_datasets(world.course, dataset, 1, hidden)
    assert refused.value.field == "dataset"
    assert refused.value.message.startswith(
        "Assignments score datasets for classification, object detection or segmentation; "
        "this dataset is for keypoints (pose)."
    )


# --- the scorer each kind goes to ----------------------------------------------------------


def _add_objects(dataset, settings, objects: list[list[dict]]) -> None:
    """One 8×8 PNG per entry, each with its annotations (Annotation fields)."""
    add_images(dataset, settings, [0] * len(objects))
    items = Item.objects.filter(dataset=dataset).order_by("pk")
    for item, annotations in zip(items, objects, strict=True):
        item.category_index = None  # items of these kinds carry objects, not one label
        item.save()
        for fields in annotations:
            Annotation.objects.create(item=item, **fields)


RLE = {"size": [8, 8], "counts": [18, 4, 4, 4, 34]}  # a 4×2 block, COCO's uncompressed form


def test_a_segmentation_submission_is_scored_by_the_loops_miou(world, settings, monkeypatch):
    dataset, hidden = _pair(world, kinds.SEGMENTATION, SHAPES)
    assignment = make_assignment(world, dataset=dataset, hidden_test=hidden, metric="miou")
    polygon = [[1.0, 1.0, 6.0, 1.0, 6.0, 5.0]]
    _add_objects(
        hidden,
        settings,
        [
            [{"category_index": 0, "bbox": [1, 1, 5, 4], "segmentation": polygon}],
            [{"category_index": 1, "bbox": [2, 2, 2, 4], "segmentation": RLE, "iscrowd": True}],
        ],
    )
    seen = fake_loop(monkeypatch, kinds.SEGMENTATION, {"miou": 0.71, "dice": 0.8, "images": 2})
    job = make_job(world, dataset, spec={"kind": "segmentation", "epochs": 1})
    submission = actions.submit(world.alice, assignment, job)
    assert scoring.score_submission(submission.pk) == "scored"
    submission.refresh_from_db()
    assert submission.score == 0.71 and submission.details["dice"] == 0.8
    assert seen["model_dir"] == Path(settings.MEDIA_ROOT) / "jobs" / str(job.pk)
    assert seen["classes"] == SHAPES
    shapes = [
        [(a.category, a.segmentation, a.iscrowd) for a in i.annotations] for i in seen["items"]
    ]
    assert shapes == [[(0, polygon, False)], [(1, RLE, True)]]
    assert all(item.path.endswith(".png") and item.split == "test" for item in seen["items"])
    assert seen["keypoints"] is None


def test_a_keypoints_submission_is_scored_by_the_loops_oks_ap(world, settings, monkeypatch):
    dataset, hidden = _pair(world, kinds.KEYPOINTS, ["person"])
    Category.objects.filter(dataset=hidden).update(keypoints=NAMES, skeleton=SKELETON)
    assignment = make_assignment(world, dataset=dataset, hidden_test=hidden, metric="oks_ap")
    points = [2.0, 1.0, 2.0, 2.0, 3.0, 2.0, 0.0, 0.0, 0.0]  # the hand not labelled
    _add_objects(
        hidden, settings, [[{"category_index": 0, "bbox": [1, 0, 3, 4], "keypoints": points}]]
    )
    seen = fake_loop(monkeypatch, kinds.KEYPOINTS, {"oks_ap": 0.42, "pck": 0.9, "people": 1})
    job = make_job(world, dataset, spec={"kind": "keypoints", "epochs": 1})
    submission = actions.submit(world.alice, assignment, job)
    assert scoring.score_submission(submission.pk) == "scored"
    submission.refresh_from_db()
    assert submission.score == 0.42 and submission.details["pck"] == 0.9
    schema = seen["keypoints"]
    assert (schema.names, schema.skeleton, schema.sigmas) == (NAMES, SKELETON, None)
    ((annotation,),) = [item.annotations for item in seen["items"]]
    assert annotation.keypoints == points and seen["classes"] == ["person"]


def test_a_scoring_without_its_metric_fails_with_a_reason(world, settings, monkeypatch):
    dataset, hidden = _pair(world, kinds.KEYPOINTS, ["person"])
    assignment = make_assignment(world, dataset=dataset, hidden_test=hidden, metric="oks_ap")
    _add_objects(hidden, settings, [[{"category_index": 0, "bbox": [1, 0, 3, 4]}]])
    fake_loop(monkeypatch, kinds.KEYPOINTS, {"oks_ap": None, "pck": None})
    job = make_job(world, dataset, spec={"kind": "keypoints", "epochs": 1})
    submission = actions.submit(world.alice, assignment, job)
    assert scoring.score_submission(submission.pk) == "failed"
    submission = Submission.objects.get(pk=submission.pk)
    assert submission.score is None and submission.details["reason"]["code"] == "data"
    assert "gives no oks_ap" in submission.error


def test_an_empty_hidden_set_is_not_scored(world, monkeypatch):
    dataset, hidden = _pair(world, kinds.SEGMENTATION, SHAPES)
    assignment = make_assignment(world, dataset=dataset, hidden_test=hidden, metric="miou")
    seen = fake_loop(monkeypatch, kinds.SEGMENTATION, {"miou": 1.0})
    job = make_job(world, dataset, spec={"kind": "segmentation", "epochs": 1})
    submission = actions.submit(world.alice, assignment, job)
    assert scoring.score_submission(submission.pk) == "failed"
    assert "has no images" in Submission.objects.get(pk=submission.pk).error and not seen


def test_every_kind_with_assignment_metrics_has_a_scorer():
    from trainer import kinds as trainer_kinds

    assert set(kinds.ASSIGNMENT_METRICS) <= set(trainer_kinds.trainable())  # the loop scores
    for metrics in kinds.ASSIGNMENT_METRICS.values():
        assert set(metrics) <= set(Metric.values)


# --- the migration ---------------------------------------------------------------------------


def test_the_models_need_no_migration_the_tree_lacks():
    out = io.StringIO()
    call_command("makemigrations", "assignments", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_metric_migration_keeps_assignments_and_is_reversible():
    before, after = (
        [("assignments", "0002_detection_metric")],
        [("assignments", "0003_segmentation_keypoints_metrics")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    executor.loader.build_graph()
    executor.migrate(after)
    apps = executor.loader.project_state(after).apps
    field = apps.get_model("assignments", "Assignment")._meta.get_field("metric")
    assert [value for value, _ in field.choices] == list(Metric.values)
    assert ("miou", "mIoU") in field.choices and ("oks_ap", "OKS AP") in field.choices
    executor.loader.build_graph()
    executor.migrate(before)  # and back: choices only, no column changes
    old = executor.loader.project_state(before).apps
    assert "miou" not in {
        v for v, _ in old.get_model("assignments", "Assignment")._meta.get_field("metric").choices
    }
    executor.loader.build_graph()
    executor.migrate(after)
