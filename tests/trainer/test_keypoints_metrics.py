"""Keypoint metrics against values worked out by hand: PCK@0.1 and the normalised error per
keypoint, OKS as pycocotools computes it, and COCO's keypoint AP on a 9-point skeleton with the
data set's sigmas (pycocotools assumes COCO's 17 unless told)."""

import math

import pytest

from trainer.keypoint_metrics import (
    COCO_NAMES,
    COCO_SIGMAS,
    coco_keypoint_ap,
    default_sigmas,
    evaluate_keypoints,
    oks,
)
from trainer.keypoints.figures import NAMES

SIGMAS = [0.05] * 9
BOX = [0.0, 0.0, 40.0, 20.0]  # size 40 → PCK@0.1 threshold 4 px; area 800


def _person(points, box=BOX, score=1.0):
    return {"keypoints": [list(p) for p in points], "box": list(box), "score": score}


def test_default_sigmas_are_cocos_for_its_17_names_else_005():
    assert default_sigmas(COCO_NAMES) == COCO_SIGMAS
    assert default_sigmas(NAMES) == [0.05] * 9
    assert default_sigmas(list(reversed(COCO_NAMES))) == [0.05] * 17  # another order: not COCO's


def test_pck_and_errors_per_keypoint_by_hand():
    truth = [(10, 10, 2), (20, 10, 2), (0, 0, 0)] + [(30, 10, 2)] * 6
    found = [(13, 10, 0.9), (20, 16, 0.8), (5, 5, 0.1)] + [(30, 10, 0.5)] * 6
    names = [f"k{i}" for i in range(9)]
    result = evaluate_keypoints(
        ["a"], [(40, 20)], [[_person(truth)]], [[_person(found)]], names, SIGMAS
    )
    # k0 is 3 px off (0.075 of the box: a hit), k1 6 px (0.15: a miss), k2 has no label, the
    # other six are exact: 7 hits of 8 labelled points.
    assert result.pck == pytest.approx(7 / 8)
    rows = {row["name"]: row for row in result.per_keypoint}
    assert rows["k0"] == {"name": "k0", "pck": 1.0, "error": pytest.approx(0.075), "labelled": 1}
    assert rows["k1"] == {"name": "k1", "pck": 0.0, "error": pytest.approx(0.15), "labelled": 1}
    assert rows["k2"] == {"name": "k2", "pck": None, "error": None, "labelled": 0}
    (row,) = result.predictions
    assert row["pck"] == pytest.approx(7 / 8) and row["box"] == BOX
    assert row["errors"][:3] == [0.075, 0.15, None]
    assert row["error"] == pytest.approx((0.075 + 0.15) / 8, abs=1e-4)
    assert row["truth"][2] == [0, 0, 0] and row["predicted"][0] == [13, 10, 0.9]
    # OKS by hand: exp(-d² / (2 · area · (2σ)²)) = exp(-d² / 16) per labelled point.
    expected = (math.exp(-9 / 16) + math.exp(-36 / 16) + 6) / 8
    assert row["oks"] == pytest.approx(expected, abs=1e-4)
    assert (result.images, result.people) == (1, 1)


def test_the_box_size_is_the_boxes_longer_side():
    truth = [_person([(10, 10, 2)] * 9, box=[0, 0, 10, 50])]  # size 50 → threshold 5 px
    found = [_person([(14.5, 10, 1)] * 9)]
    result = evaluate_keypoints([1], [(64, 64)], [truth], [found], NAMES, SIGMAS)
    assert result.pck == 1.0
    assert result.per_keypoint[0]["error"] == pytest.approx(4.5 / 50)


def test_our_oks_is_pycocotools_oks():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = _person([(10 + 3 * k, 5 + k, 2 if k != 4 else 0) for k in range(9)])
    predicted = [(11 + 3 * k, 5 + 2 * k, 0.5) for k in range(9)]
    ours = oks(predicted, truth, SIGMAS)
    coco = []
    for listed in (
        [{"keypoints": [v for p in truth["keypoints"] for v in p], "num_keypoints": 8}],
        [{"keypoints": [v for p in predicted for v in p], "score": 1.0, "num_keypoints": 9}],
    ):
        dataset = COCO()
        dataset.dataset = {
            "images": [{"id": 1}],
            "categories": [{"id": 1}],
            "annotations": [
                {**a, "id": 1, "image_id": 1, "category_id": 1, "bbox": BOX, "area": 800,
                 "iscrowd": 0}
                for a in listed
            ],
        }  # fmt: skip
        dataset.createIndex()
        coco.append(dataset)
    evaluator = COCOeval(coco[0], coco[1], "keypoints")
    evaluator.params.kpt_oks_sigmas = __import__("numpy").array(SIGMAS)
    evaluator.evaluate()
    assert ours == pytest.approx(float(evaluator.ious[(1, 1)][0, 0]))


def test_oks_ap_on_a_nine_point_skeleton_by_hand():
    # Two images, one person each; one prediction is exact (OKS 1), the other has OKS 0.62:
    # a hit at OKS thresholds 0.5, 0.55 and 0.6 (AP 1 there), a false positive at the seven
    # thresholds above, where recall stops at 1/2: 51 of COCO's 101 recall levels have
    # precision 1, so AP is 51/101 there.
    exact = [(5 + 3 * k, 10 + k, 2) for k in range(9)]
    shift = math.sqrt(-math.log(0.62) * 16)  # every point this far off: OKS 0.62
    off = [(x + shift, y, 1) for x, y, _ in exact]
    truth = [[_person(exact)], [_person(exact)]]
    found = [[_person(exact, score=0.9)], [_person(off, score=0.8)]]
    ap, ap50 = coco_keypoint_ap(truth, found, SIGMAS)
    assert ap50 == pytest.approx(1.0)
    assert ap == pytest.approx((3 + 7 * 51 / 101) / 10)
    # With a hip's sigma (0.107) the same miss has OKS exp(-7.65 / 73.3) = 0.90: it fails at
    # the 0.95 threshold only. The sigmas matter.
    wide = [0.107] * 9
    assert coco_keypoint_ap(truth, found, wide)[0] == pytest.approx((9 + 51 / 101) / 10)


def test_a_missed_figure_counts_against_pck_and_ap_and_no_truth_gives_none():
    truth = [[_person([(10, 10, 2)] * 9)], []]
    found = [[], [_person([(1, 1, 0.5)] * 9, score=0.5)]]
    result = evaluate_keypoints([1, 2], [(64, 64)] * 2, truth, found, NAMES, SIGMAS)
    assert result.pck == 0.0 and result.oks_ap == 0.0
    missed, empty = result.predictions
    assert missed["predicted"] == [] and missed["oks"] == 0.0 and missed["errors"] == [None] * 9
    assert empty["truth"] is None and empty["pck"] is None and empty["box"] is None
    assert len(empty["predicted"]) == 9
    nothing = evaluate_keypoints([1], [(64, 64)], [[]], [[]], NAMES, SIGMAS)
    assert nothing.pck is None and nothing.oks_ap is None
    assert nothing.to_dict()["per_keypoint"][0]["labelled"] == 0
