"""Detection metrics on a case small enough to work out by hand.

Two classes, two images, 10×10 boxes:
  image 1: a cat at (0, 0), found exactly (score 0.9); a dog at (50, 50), found 2.4 pixels to
           the right (IoU 7.6/12.4 ≈ 0.613, score 0.8); a cat box on nothing (score 0.7).
  image 2: a cat at (20, 20) that nothing found.

cat, at every IoU threshold: detections by score are [hit, false alarm] of 2 cats, so recall
reaches 0.5 at precision 1. COCO reads interpolated precision at recall 0, 0.01, …, 1: 1.0 at
the 51 levels up to 0.5, 0 at the 50 above. AP = 51/101 at every threshold.
dog: one detection at IoU 0.613: a hit at the thresholds 0.5, 0.55 and 0.6 (AP 1), a miss at
the 7 above (AP 0). AP50 = 1, AP(0.5:0.95) = 3/10.
mAP@0.5 = (51/101 + 1) / 2; mAP = (51/101 + 0.3) / 2.
"""

import pytest

from trainer.detection_metrics import evaluate_detections, image_errors

CLASSES = ["cat", "dog"]
CAT, DOG = 0, 1
TRUTH = [
    {"boxes": [[0, 0, 10, 10], [50, 50, 10, 10]], "labels": [CAT, DOG]},
    {"boxes": [[20, 20, 10, 10]], "labels": [CAT]},
]
FOUND = [
    {
        "boxes": [[0, 0, 10, 10], [52.4, 50, 10, 10], [100, 100, 10, 10]],
        "scores": [0.9, 0.8, 0.7],
        "labels": [CAT, DOG, CAT],
    },
    {"boxes": [], "scores": [], "labels": []},
]


def _evaluate():
    return evaluate_detections(
        ["a", "b"], [(200, 200), (200, 200)], TRUTH, FOUND, CLASSES, loss=1.5
    )


def test_map_matches_the_hand_computed_figures():
    result = _evaluate()
    cat_ap = 51 / 101
    assert result.map50 == pytest.approx((cat_ap + 1.0) / 2, abs=1e-6)
    assert result.map == pytest.approx((cat_ap + 0.3) / 2, abs=1e-6)
    assert result.figures == {"loss": 1.5, "map50": result.map50, "map": result.map}
    by_name = {row["name"]: row for row in result.per_class}
    assert by_name["cat"] == pytest.approx(
        {"name": "cat", "ap50": cat_ap, "ap": cat_ap, "objects": 2}
    )
    assert by_name["dog"]["ap50"] == pytest.approx(1.0)
    assert by_name["dog"]["ap"] == pytest.approx(0.3)
    assert (result.images, result.objects) == (2, 3)


def test_precision_recall_curve_is_thinned_to_where_precision_changes():
    curves = _evaluate().pr_curves
    assert curves["cat"] == {"recall": [0.0, 0.5, 0.51, 1.0], "precision": [1.0, 1.0, 0.0, 0.0]}
    assert curves["dog"] == {"recall": [0.0, 1.0], "precision": [1.0, 1.0]}


def test_a_class_without_objects_has_no_ap_and_no_curve():
    result = evaluate_detections(
        ["a", "b"], [(200, 200)] * 2, TRUTH, FOUND, [*CLASSES, "bird"], loss=None
    )
    bird = result.per_class[2]
    assert bird == {"name": "bird", "ap50": None, "ap": None, "objects": 0}
    assert "bird" not in result.pr_curves
    assert result.map50 == pytest.approx((51 / 101 + 1.0) / 2, abs=1e-6)  # averaged over 2


def test_nothing_found_scores_zero_and_every_object_is_missed():
    empty = [{"boxes": [], "scores": [], "labels": []}] * 2
    result = evaluate_detections(["a", "b"], [(200, 200)] * 2, TRUTH, empty, CLASSES, loss=None)
    assert (result.map50, result.map) == (0.0, 0.0)
    assert [e["type"] for row in result.predictions for e in row["errors"]] == ["missed"] * 3


def test_prediction_rows_have_the_contract_shape_and_error_types():
    rows = _evaluate().predictions
    assert [row["id"] for row in rows] == ["a", "b"]
    first, second = rows
    assert first["width"] == 200 and first["height"] == 200
    assert first["boxes"] == FOUND[0]["boxes"] and first["labels"] == [CAT, DOG, CAT]
    assert first["truth"] == {"boxes": TRUTH[0]["boxes"], "labels": [CAT, DOG]}
    # The hit and the shifted dog (IoU 0.61 ≥ 0.5) are right; the lone cat box is not.
    assert first["errors"] == [
        {
            "type": "false_positive",
            "box": [100, 100, 10, 10],
            "label": CAT,
            "score": 0.7,
            "iou": 0.0,
        }
    ]
    assert first["severity"] == pytest.approx(0.7)
    assert second["errors"] == [
        {"type": "missed", "box": [20, 20, 10, 10], "label": CAT, "score": None, "iou": None}
    ]
    assert second["severity"] == 1.0


def test_wrong_class_poor_localisation_and_duplicates():
    truth = {"boxes": [[0, 0, 10, 10], [40, 40, 10, 10]], "labels": [DOG, CAT]}
    found = {
        "boxes": [
            [0, 0, 10, 10],
            [45, 45, 10, 10],
            [40, 40, 10, 10],
            [40, 40, 10, 10],
            [0, 0, 5, 5],
        ],
        "scores": [0.9, 0.8, 0.6, 0.5, 0.2],
        "labels": [CAT, CAT, CAT, CAT, DOG],
    }
    errors, severity = image_errors(truth, found)
    # 1: a cat box exactly on the dog. 2: a cat box overlapping the cat by 25/175 = 0.14.
    # 3: finds the cat. 4: the same cat again, already found. 5: below the 0.3 score: ignored.
    # Neither true box is "missed": the dog is explained by the wrong class, the cat was found.
    assert [(e["type"], e["score"], e["iou"]) for e in errors] == [
        ("wrong_class", 0.9, 1.0),
        ("poor_localisation", 0.8, pytest.approx(25 / 175, abs=1e-4)),
        ("false_positive", 0.5, 1.0),
    ]
    assert severity == pytest.approx(1.0 + 0.5 + 0.5)
