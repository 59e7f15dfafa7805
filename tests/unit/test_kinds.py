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


@pytest.mark.parametrize("kind", ["classification", "detection"])
def test_the_curves_a_compare_page_overlays_are_epoch_figures_of_the_kind(kind):
    keys = [curve["key"] for curve in kinds.curves(kind)]
    assert set(keys) <= set(trainer_kinds.EPOCH_FIGURES[kind])
    assert set(trainer_kinds.EPOCH_FIGURES[kind]) <= set(kinds.SERIES)  # every one labelled
    assert keys[0] == {"classification": "val_acc", "detection": "val_map50"}[kind]


def test_assignment_metrics_per_kind():
    assert kinds.assignment_metrics("classification") == ("accuracy", "macro_f1")
    assert kinds.assignment_metrics("detection") == ("map50",)
    assert not kinds.scored("segmentation")


def test_japanese_labels(settings):
    from django.utils import translation

    with translation.override("ja"):
        assert kinds.primary("detection").label == "mAP@0.5"
        assert str(kinds.FIGURES["classification"][0].label) != "Test accuracy"
