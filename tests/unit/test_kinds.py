"""webapp/jobs/kinds.py: each kind's Job.metrics, figures, curves and assignment metrics."""

import pytest

from trainer import kinds as trainer_kinds
from webapp.jobs import kinds


def _epoch(epoch, **figures):
    return {"kind": "epoch", "data": {"epoch": epoch, "fold": 0, "lr": 0.01, **figures}}


def _detection_epoch(epoch, loss, map50, map_):
    parts = {"train_heatmap": 0.6 * loss, "train_size": 0.3 * loss, "train_offset": 0.1 * loss}
    return _epoch(
        epoch, train_loss=loss, **parts, val_loss=loss + 0.2, val_map50=map50, val_map=map_
    )


def _run(kind, events):
    metrics = {}
    for event in events:
        after = kinds.metrics_after(kind, event, metrics)
        if after is not None:
            metrics = after
    return metrics


DETECTION_EVALUATION = {
    "loss": 1.2,
    "map50": 0.81,
    "map": 0.52,
    "per_class": [{"name": "circle", "ap50": 0.81, "ap": 0.52, "objects": 30}],
    "pr_curves": {"circle": {"recall": [0.0, 1.0], "precision": [1.0, 0.5]}},
    "images": 20,
    "objects": 30,
}


def test_classification_keeps_the_best_validation_accuracy():
    m = kinds.metrics_after("classification", _epoch(1, val_acc=0.8), {})
    m = kinds.metrics_after("classification", _epoch(2, val_acc=0.7), m)
    assert m["best_val_acc"] == 0.8 and m["val_acc"] == 0.7 and m["epoch"] == 2
    finished = {"kind": "finished", "data": {"test": {"accuracy": 0.75, "loss": 1}}}
    m = kinds.metrics_after("classification", finished, m)
    assert m["test_accuracy"] == 0.75 and m["test_loss"] == 1
    assert kinds.metrics_after("classification", {"kind": "batch", "data": {}}, m) is None


def test_classification_keeps_kfold_figures():
    finished = {
        "kind": "finished",
        "data": {"kfold": {"mean_accuracy": 0.9, "std_accuracy": 0.02}, "test": None},
    }
    m = kinds.metrics_after("classification", finished, {})
    assert m == {"kfold_mean": 0.9, "kfold_std": 0.02}


def test_a_detection_run_gets_the_contracts_flat_keys():
    m = _run(
        "detection",
        [
            {"kind": "started", "data": {"kind": "detection"}},
            _detection_epoch(1, 3.0, 0.40, 0.20),
            _detection_epoch(2, 2.0, 0.62, 0.31),
            _detection_epoch(3, 1.8, 0.55, 0.30),
            {
                "kind": "finished",
                "data": {
                    "kind": "detection",
                    "val": {**DETECTION_EVALUATION, "map50": 0.58, "map": 0.3},
                    "test": DETECTION_EVALUATION,
                },
            },
        ],
    )
    contract = set(trainer_kinds.FIGURES["detection"])
    assert contract <= set(m)
    assert m["best_val_map50"] == 0.62  # the best epoch, not the last
    assert (m["val_map50"], m["val_map"]) == (0.58, 0.3)  # the final validation's
    assert (m["test_map50"], m["test_map"]) == (0.81, 0.52)
    assert (m["map50"], m["map"]) == (0.81, 0.52)  # test, since there is a test split
    assert m["epoch"] == 3 and m["train_heatmap"] == pytest.approx(1.08)
    assert "val_accuracy" not in m and "best_val_acc" not in m  # no classification keys
    assert kinds.primary_value("detection", m) == 0.81


def test_a_detection_run_without_test_split_reads_map50_from_validation():
    m = _run(
        "detection",
        [
            _epoch(1, train_loss=2.0, val_loss=None, val_map50=0.5, val_map=0.25),
            {"kind": "finished", "data": {"val": DETECTION_EVALUATION, "test": None}},
        ],
    )
    assert (m["map50"], m["map"]) == (0.81, 0.52)
    assert "test_map50" not in m
    assert kinds.primary_value("detection", m) == 0.81  # val_map50, the fallback


def test_the_primary_figure_is_the_test_one_else_validation_per_kind():
    assert kinds.primary_value("classification", {"val_accuracy": 0.8}) == 0.8
    both = {"val_accuracy": 0.8, "test_accuracy": 0.7}
    assert kinds.primary_value("classification", both) == 0.7
    assert kinds.primary_value("classification", {"val_acc": 0.5, "epoch": 1}) == 0.5
    assert kinds.primary_value("detection", {"val_map50": 0.4}) == 0.4
    assert kinds.primary_value("detection", {"val_accuracy": 0.9}) is None
    assert kinds.primary_value("detection", None) is None
    for kind, keys in kinds.PRIMARY_KEYS.items():
        assert keys[0] == trainer_kinds.PRIMARY[kind]  # the trainer decides what ranks


def test_figures_are_labelled_and_formatted_per_kind():
    detection = kinds.shown_figures("detection", {"test_map50": 0.8123, "val_map50": None})
    assert [(f["key"], f["label"], f["text"]) for f in detection] == [
        ("test_map50", "Test mAP@0.5", "81.2%")
    ]
    classification = kinds.shown_figures("classification", {"val_loss": 0.41234})
    assert classification[0]["text"] == "0.412" and not classification[0]["higher_is_better"]
    assert kinds.primary("detection").label == "mAP@0.5"
    assert kinds.primary("classification").label == "accuracy"
    # Every flat key a page shows is one the trainer's contract names.
    for kind, shown in kinds.FIGURES.items():
        assert {f.key for f in shown} <= set(trainer_kinds.FIGURES[kind])


@pytest.mark.parametrize("kind", trainer_kinds.KINDS)
def test_the_curves_a_compare_page_overlays_are_epoch_figures_of_the_kind(kind):
    keys = [curve["key"] for curve in kinds.curves(kind)]
    assert set(keys) <= set(trainer_kinds.EPOCH_FIGURES[kind])
    assert set(trainer_kinds.EPOCH_FIGURES[kind]) <= set(kinds.SERIES)  # every one labelled
    leading = {
        "classification": "val_acc",
        "detection": "val_map50",
        "segmentation": "val_miou",
        "keypoints": "val_pck",
    }
    assert keys[0] == leading[kind]


def test_every_kind_the_trainer_knows_has_one_view_in_the_web_app():
    assert set(kinds.VIEWS) == set(trainer_kinds.KINDS)
    for kind, view in kinds.VIEWS.items():
        assert view.primary_keys[0] == trainer_kinds.PRIMARY[kind]
        assert set(view.api_keys) <= set(trainer_kinds.FIGURES[kind]), kind


@pytest.mark.parametrize(
    ("kind", "evaluation", "expected"),
    [
        (
            "segmentation",
            {"loss": 0.3, "miou": 0.81, "dice": 0.88, "pixel_accuracy": 0.97},
            {"miou": 0.81, "test_miou": 0.81, "dice": 0.88, "pixel_accuracy": 0.97},
        ),
        ("keypoints", {"pck": 0.9, "oks_ap": 0.7}, {"pck": 0.9, "test_pck": 0.9, "oks_ap": 0.7}),
    ],
)
def test_segmentation_and_keypoints_runs_get_their_flat_keys(kind, evaluation, expected):
    val = {**evaluation, **{k: 0.5 for k in ("miou", "pck") if k in evaluation}}
    m = _run(
        kind,
        [
            _epoch(1, train_loss=2.0, **{f"val_{k}": 0.4 for k in ("miou", "pck")}),
            {"kind": "finished", "data": {"kind": kind, "val": val, "test": evaluation}},
        ],
    )
    assert expected.items() <= m.items()
    assert m[f"val_{'miou' if kind == 'segmentation' else 'pck'}"] == 0.5
    assert m[f"best_val_{'miou' if kind == 'segmentation' else 'pck'}"] == 0.4
    assert (
        kinds.primary_value(kind, m)
        == expected["test_miou" if kind == "segmentation" else "test_pck"]
    )
    assert set(kinds.api_metrics(kind, m)) >= set(kinds.VIEWS[kind].api_keys)


def test_assignment_metrics_per_kind():
    assert kinds.assignment_metrics("classification") == ("accuracy", "macro_f1")
    assert kinds.assignment_metrics("detection") == ("map50",)
    assert kinds.assignment_metrics("segmentation") == ("miou",)
    assert kinds.assignment_metrics("keypoints") == ("oks_ap",)
    assert kinds.scored("keypoints") and not kinds.scored("painting")


def test_japanese_labels(settings):
    from django.utils import translation

    with translation.override("ja"):
        assert kinds.primary("detection").label == "mAP@0.5"
        assert str(kinds.FIGURES["classification"][0].label) != "Test accuracy"


# --- the consumers: the job task, the compare page ----------------------------------------


def _dataset(world, kind, name):
    from webapp.datasets.models import Dataset

    return Dataset.objects.create(
        course=world.course,
        owner=world.alice,
        name=name,
        kind=kind,
        visibility="private",
        status="ready",
        head=1,
    )


def _run_of(world, dataset, epochs, metrics=None, label=""):
    from webapp.jobs.models import Job, JobEvent

    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=1,
        spec={"epochs": len(epochs)},
        status="succeeded",
        metrics=metrics or {},
        label=label,
    )
    JobEvent.objects.bulk_create(
        JobEvent(job=job, number=n, attempt=1, seq=n, kind="epoch", data=event["data"])
        for n, event in enumerate(epochs, start=1)
    )
    return job


@pytest.mark.django_db
def test_the_job_task_keeps_a_detection_runs_metrics(world):
    from webapp.jobs.models import Job
    from webapp.jobs.tasks import JobReporter

    dataset = _dataset(world, "detection", "shapes")
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=1,
        spec={"epochs": 2},
        status="running",
        attempts=1,
    )
    reporter = JobReporter(job.pk, 1, epochs=2, kind=kinds.job_kind(job))
    assert reporter.kind == "detection"
    reporter({**_detection_epoch(1, 2.0, 0.4, 0.2), "seq": 1})
    reporter({**_detection_epoch(2, 1.5, 0.3, 0.1), "seq": 2})
    finished = {"kind": "finished", "seq": 3, "data": {"val": DETECTION_EVALUATION, "test": None}}
    reporter(finished)
    job.refresh_from_db()
    assert job.metrics["best_val_map50"] == 0.4 and job.metrics["map50"] == 0.81
    assert job.metrics["val_map50"] == 0.81 and "best_val_acc" not in job.metrics


@pytest.mark.django_db
def test_compare_hands_the_script_a_detection_runs_series_labelled(world):
    shapes = _dataset(world, "detection", "shapes")
    first = _run_of(
        world,
        shapes,
        [_detection_epoch(1, 2.0, 0.4, 0.2), _detection_epoch(2, 1.5, 0.7, 0.35)],
        metrics={"test_map50": 0.66, "val_map50": 0.7, "map50": 0.66},
        label="centernet",
    )
    second = _run_of(world, shapes, [_detection_epoch(1, 2.5, 0.2, 0.1)], label="fcos")
    client = world.client("alice")
    data = client.get(f"/compare/?jobs={first.pk},{second.pk}&format=json").json()
    assert data["kind"] == "detection"
    assert [c["key"] for c in data["curves"]] == ["val_map50", "val_map", "train_loss"]
    assert data["curves"][0]["label"] == "validation mAP@0.5"
    assert data["curves"][0]["format"] == "percent" and data["curves"][2]["format"] == "number"
    assert [c["key"] for c in data["columns"]] == ["best_val_map50", "test_map50"]
    run = data["runs"][0]
    assert [p["val_map50"] for p in run["points"]] == [0.4, 0.7]
    assert "val_acc" not in run["points"][0]
    assert run["best_val_map50"] == 0.7 and run["test_map50"] == 0.66
    assert run["primary"]["label"] == "mAP@0.5" and run["primary"]["value"] == 0.66
    series = {s["key"]: s["label"] for s in run["series"]}
    assert (
        series["val_map50"] == "validation mAP@0.5" and series["train_heatmap"] == "heat-map loss"
    )
    assert data["runs"][1]["test_map50"] is None and data["runs"][1]["best_val_map50"] == 0.2
    html = client.get(f"/compare/?jobs={first.pk},{second.pk}")
    assert html.status_code == 200 and "compare-data" in html.content.decode()


@pytest.mark.django_db
def test_compare_hands_a_classification_runs_accuracy_series(world):
    digits = _dataset(world, "classification", "digits")
    runs = [
        _run_of(world, digits, [_epoch(1, train_loss=1.0, train_acc=0.5, val_loss=0.9, val_acc=v)])
        for v in (0.6, 0.8)
    ]
    data = world.client("alice").get(f"/compare/?jobs={runs[0].pk},{runs[1].pk}&format=json")
    data = data.json()
    assert data["kind"] == "classification"
    assert [c["key"] for c in data["curves"]] == ["val_acc", "val_loss", "train_loss"]
    assert [c["key"] for c in data["columns"]] == ["best_val_acc", "test_accuracy"]
    assert [r["best_val_acc"] for r in data["runs"]] == [0.6, 0.8]
    assert {s["key"] for s in data["runs"][0]["series"]} == {
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
    }


@pytest.mark.django_db
def test_runs_of_different_kinds_are_not_overlaid_and_the_page_says_why(world):
    digits = _dataset(world, "classification", "digits")
    shapes = _dataset(world, "detection", "shapes")
    one = _run_of(world, digits, [_epoch(1, val_acc=0.5)])
    other = _run_of(world, shapes, [_detection_epoch(1, 2.0, 0.4, 0.2)])
    response = world.client("alice").get(f"/compare/?jobs={one.pk},{other.pk}")
    html = response.content.decode()
    assert response.status_code == 400 and 'id="compare-error"' in html
    assert "different kinds (classification, object detection)" in html
    assert "compare-data" not in html  # nothing drawn


# --- the API ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_answers_a_detection_runs_flat_keys_and_no_accuracy(world):
    from django.test import Client

    shapes = _dataset(world, "detection", "shapes")
    digits = _dataset(world, "classification", "digits")
    metrics = {"map50": 0.7, "map": 0.4, "val_map50": 0.7, "val_map": 0.4, "epoch": 3}
    detector = _run_of(world, shapes, [], metrics=metrics)
    classifier = _run_of(world, digits, [], metrics={"val_accuracy": 0.9, "epoch": 2})
    client = Client()
    body = client.get(f"/api/v1/jobs/{detector.pk}", **world.bearer("alice")).json()
    assert body["metrics"] == {**metrics, "test_map50": None}  # every key kept, the rest null
    assert "test_accuracy" not in body["metrics"] and "val_accuracy" not in body["metrics"]
    body = client.get(f"/api/v1/jobs/{classifier.pk}", **world.bearer("alice")).json()
    assert body["metrics"] == {
        "val_accuracy": 0.9,
        "epoch": 2,
        "test_accuracy": None,
        "val_loss": None,
    }


def test_the_openapi_schema_documents_each_kinds_metrics():
    from django.test import Client

    schema = Client().get("/api/v1/openapi.json").json()
    metrics = schema["components"]["schemas"]["Metrics"]
    for kind in trainer_kinds.KINDS:
        for key in trainer_kinds.FIGURES[kind]:
            owners = metrics["properties"][key]["description"].split(": ")[0].split(", ")
            assert kind in owners, key
    assert metrics["properties"]["test_map50"]["description"] == "detection: Test mAP@0.5"
    assert metrics["properties"]["miou"]["description"] == "segmentation: mIoU"
    shared = metrics["properties"]["val_loss"]["description"]
    assert shared.startswith("classification, segmentation, keypoints: "), shared
    assert "map50" in metrics["description"] and metrics["additionalProperties"] is True


@pytest.mark.parametrize("kind", trainer_kinds.KINDS)
def test_the_job_page_charts_every_epoch_figure_of_the_kind_once(kind):
    live = kinds.live_view(kind)
    epoch = set(trainer_kinds.EPOCH_FIGURES[kind])
    assert set(live["curves"]) | set(live["losses"]) == epoch  # every figure on one chart
    assert not set(live["curves"]) & set(live["losses"])
    assert all(key.endswith("loss") or key.startswith("train_") for key in live["losses"])
    assert live["best"] in live["curves"] and live["best"] == kinds.VIEWS[kind].best_of_epochs[0]
    assert live["final"] == kinds.VIEWS[kind].split_figures[0]


def test_the_job_pages_words_name_the_kinds_figure():
    assert kinds.live_view("segmentation")["title"] == "mIoU per epoch"  # not "MIoU"
    assert kinds.live_view("classification")["title"] == "Accuracy per epoch"
    assert kinds.live_view("keypoints")["best_label"] == "Best validation PCK@0.1"
    assert kinds.live_view("detection")["test_label"] == "Test mAP@0.5"
