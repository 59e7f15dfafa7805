"""Segmentation metrics on maps small enough to count by hand: IoU, Dice, their foreground means,
pixel accuracy, the per-image rows with their RLE regions, and COCO's segm AP."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

from trainer.segmentation import IGNORE
from trainer.segmentation_metrics import (
    class_figures,
    confusion,
    instance_rle,
    prediction_row,
    segm_ap,
)

# 4×4 maps, channels 0 background, 1 "cat", 2 "dog", 3 "bird" (in neither map).
TRUTH = torch.tensor(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 0, 0],
        [2, 2, 0, IGNORE],
    ]
)
PREDICTED = torch.tensor(
    [
        [0, 1, 1, 1],
        [0, 0, 1, 0],
        [2, 2, 2, 0],
        [0, 2, 0, 2],  # the last pixel is IGNORE in the truth: it counts for nothing
    ]
)
NAMES = ["background", "cat", "dog", "bird"]


def test_the_confusion_matrix_counts_pixels_and_skips_ignored_ones():
    matrix = confusion(TRUTH, PREDICTED, 4)
    # rows: truth; columns: predicted. 15 counted pixels (one IGNORE).
    assert matrix.tolist() == [
        [5, 1, 1, 0],  # background: 5 right, 1 taken for a cat, 1 for a dog
        [1, 3, 0, 0],  # cat: 3 of 4 found
        [1, 0, 3, 0],  # dog: 3 of 4 found
        [0, 0, 0, 0],
    ]


def test_iou_dice_and_their_means_by_hand():
    figures = class_figures(confusion(TRUTH, PREDICTED, 4), NAMES)
    rows = {row["name"]: row for row in figures["per_class"]}
    # cat: TP 3, truth 4, predicted 4 → IoU 3 / (4 + 4 − 3) = 3/5, Dice 6/8.
    assert rows["cat"]["iou"] == pytest.approx(3 / 5)
    assert rows["cat"]["dice"] == pytest.approx(6 / 8)
    # dog: TP 3, truth 4, predicted 4 (3 + the background pixel at row 2) → the same.
    assert rows["dog"]["iou"] == pytest.approx(3 / 5)
    # background: TP 5, truth 7, predicted 7 → 5/9; Dice 10/14.
    assert rows["background"]["iou"] == pytest.approx(5 / 9)
    assert rows["background"]["dice"] == pytest.approx(10 / 14)
    assert rows["background"]["background"] and not rows["cat"]["background"]
    # bird is in neither: no IoU, and it does not drag the means down.
    assert rows["bird"]["iou"] is None and rows["bird"]["dice"] is None
    assert [row["pixels"] for row in figures["per_class"]] == [7, 4, 4, 0]
    assert figures["miou"] == pytest.approx(3 / 5)  # over cat and dog only, not background
    assert figures["dice"] == pytest.approx(6 / 8)
    assert figures["pixel_accuracy"] == pytest.approx(11 / 15)


def test_a_class_predicted_but_absent_counts_with_iou_zero():
    truth = torch.zeros(2, 2, dtype=torch.int64)
    predicted = torch.tensor([[0, 3], [0, 0]])
    figures = class_figures(confusion(truth, predicted, 4), NAMES)
    assert figures["per_class"][3]["iou"] == 0.0  # predicted, never true: it occurs
    assert figures["miou"] == 0.0 and figures["pixel_accuracy"] == pytest.approx(3 / 4)


def test_an_extra_column_only_counts_as_wrong():
    # Scoring: a model class the test set lacks lands in a column past the names.
    truth = torch.tensor([[1, 1], [0, 0]])
    predicted = torch.tensor([[2, 1], [0, 0]])  # channel 2: "a class the test set lacks"
    figures = class_figures(confusion(truth, predicted, 3), ["background", "cat"])
    assert figures["per_class"][1]["iou"] == pytest.approx(1 / 2)
    assert figures["pixel_accuracy"] == pytest.approx(3 / 4)


def test_an_image_row_holds_its_figures_and_its_regions_as_rle():
    truth, predicted = TRUTH.numpy().astype(np.int16), PREDICTED.numpy().astype(np.int16)
    row = prediction_row("a.png", (640, 480), truth, predicted, 4)
    assert (row["id"], row["width"], row["height"], row["size"]) == ("a.png", 640, 480, [4, 4])
    assert row["iou"] == pytest.approx(0.6) and row["pixel_accuracy"] == pytest.approx(0.7333)
    assert row["classes_iou"] == {"1": 0.6, "2": 0.6}
    assert set(row["truth"]) == {"1", "2"} and set(row["predicted"]) == {"1", "2"}
    for channel, counts in row["truth"].items():
        decoded = mask_util.decode({"size": [4, 4], "counts": counts.encode("ascii")})
        assert np.array_equal(decoded, (truth == int(channel)).astype(np.uint8))
    cat = mask_util.decode({"size": [4, 4], "counts": row["predicted"]["1"].encode("ascii")})
    assert np.array_equal(cat, (predicted == 1).astype(np.uint8))


def test_an_image_with_only_background_has_no_iou():
    empty = np.zeros((3, 3), np.int16)
    row = prediction_row(1, (3, 3), empty, empty, 2)
    assert row["iou"] is None and row["dice"] is None and row["pixel_accuracy"] == 1.0
    assert row["truth"] == {} and row["predicted"] == {} and row["classes_iou"] == {}


def _square(x1, y1, x2, y2, size=32):
    mask = torch.zeros(size, size, dtype=torch.uint8)
    mask[y1:y2, x1:x2] = 1
    return instance_rle(mask)


def test_segm_ap_is_one_for_the_true_masks_and_drops_for_poor_ones():
    truth = [
        [{"rle": _square(2, 2, 12, 12), "label": 0}, {"rle": _square(16, 16, 30, 30), "label": 1}]
    ]
    perfect = [[{**one, "score": 0.9} for one in truth[0]]]
    ap, ap50 = segm_ap(truth, perfect, ["a", "b"])
    assert ap == pytest.approx(1.0) and ap50 == pytest.approx(1.0)
    # The "b" mask covers 6/14 of the rows of the true one: IoU ≈ 0.43, under every threshold.
    poor = [[perfect[0][0], {"rle": _square(16, 16, 30, 22), "label": 1, "score": 0.9}]]
    ap, ap50 = segm_ap(truth, poor, ["a", "b"])
    assert ap50 == pytest.approx(0.5) and ap == pytest.approx(0.5)
    assert segm_ap([[]], [[]], ["a"]) == (None, None)
