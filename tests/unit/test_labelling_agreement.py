"""Agreement arithmetic of labelling assignments, checked against values computed by hand (the
arithmetic is in each test's comment), and the deal that hands the images out."""

import math
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from webapp.labelling import agreement
from webapp.labelling.actions import distribute


def test_fleiss_kappa_of_the_textbook_example_is_0_210():
    # Fleiss (1971) as Wikipedia gives it: 10 subjects, 14 raters each, 5 categories.
    # Column sums 20, 28, 39, 21, 32 of 140 ratings: P̄e = (20² + 28² + 39² + 21² + 32²) / 140²
    #   = 4170 / 19600 = 0.212755.
    # Σ of Σ n_ij² per row: 196 + 60 + 70 + 94 + 74 + 98 + 58 + 46 + 66 + 66 = 828, so
    #   P̄ = (828 − 10 · 14) / (10 · 14 · 13) = 688 / 1820 = 0.378022.
    # κ = (0.378022 − 0.212755) / (1 − 0.212755) = 0.165267 / 0.787245 = 0.209931.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert agreement.fleiss_kappa(table) == pytest.approx(0.209931, abs=1e-6)
    assert round(agreement.fleiss_kappa(table), 3) == 0.210


def test_cohen_kappa_of_the_textbook_example_is_0_4():
    # 50 items, two raters: both yes 20, A yes B no 5, A no B yes 10, both no 15.
    # p_o = (20 + 15) / 50 = 0.7; A says yes 25/50 = 0.5, B 30/50 = 0.6;
    # p_e = 0.5 · 0.6 + 0.5 · 0.4 = 0.5; κ = (0.7 − 0.5) / (1 − 0.5) = 0.4.
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert agreement.cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_and_fleiss_of_two_students_on_four_images():
    # alice: cat cat dog dog; bob: cat dog dog dog.
    # Cohen: p_o = 3/4; alice cat 2 dog 2, bob cat 1 dog 3: p_e = (2·1 + 2·3) / 16 = 0.5;
    #   κ = (0.75 − 0.5) / 0.5 = 0.5.
    # Fleiss: rows [2,0] [1,1] [0,2] [0,2]: P_i = 1, 0, 1, 1 → P̄ = 0.75; p_cat = 3/8,
    #   p_dog = 5/8 → P̄e = 9/64 + 25/64 = 0.53125; κ = 0.21875 / 0.46875 = 0.466667.
    alice, bob = [0, 0, 1, 1], [0, 1, 1, 1]
    assert agreement.cohen_kappa(alice, bob) == pytest.approx(0.5)
    table = agreement.fleiss_table(list(zip(alice, bob, strict=True)))
    assert table == [[2, 0], [1, 1], [0, 2], [0, 2]]
    assert agreement.fleiss_kappa(table) == pytest.approx(0.466667, abs=1e-6)
    summary = agreement.label_summary(
        {f"img{i}": {1: a, 2: b} for i, (a, b) in enumerate(zip(alice, bob, strict=True))}
    )
    assert summary["kappa_images"] == 4 and summary["raters"] == 2
    assert summary["cohen"] == pytest.approx(0.5)
    assert summary["fleiss"] == pytest.approx(0.466667, abs=1e-6)
    assert summary["observed"] == pytest.approx(0.75)


def test_cohen_needs_the_same_two_students_on_every_image():
    # Three students in pairs (1,2), (2,3): Fleiss only (the raters differ between images).
    summary = agreement.label_summary({"a": {1: 0, 2: 0}, "b": {2: 1, 3: 0}})
    assert summary["cohen"] is None
    # rows [2,0] [1,1]: P̄ = (1 + 0)/2 = 0.5; p0 = 3/4, p1 = 1/4: P̄e = 10/16 = 0.625;
    # κ = (0.5 − 0.625) / 0.375 = −1/3.
    assert summary["fleiss"] == pytest.approx(-1 / 3)


def test_kappa_is_undefined_when_chance_explains_everything():
    # Both raters say "cat" always: p_e = 1, κ = 0/0.
    assert agreement.cohen_kappa([0, 0, 0], [0, 0, 0]) is None
    assert agreement.fleiss_kappa([[2], [2]]) is None
    assert agreement.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        agreement.fleiss_kappa([[2, 0], [1, 1, 1]])


def test_pair_agreement_is_the_share_of_agreeing_pairs():
    # Three raters cat, cat, dog: (2² + 1² − 3) / (3 · 2) = 2/6 = 1/3 (one pair of three agrees).
    assert agreement.pair_agreement([0, 0, 1]) == pytest.approx(1 / 3)
    assert agreement.pair_agreement([4, 4, 4]) == 1.0
    assert agreement.pair_agreement([0, 1]) == 0.0


def box(x, y, w, h, category=0):
    return {"category": category, "bbox": [x, y, w, h], "segmentation": None}


def test_box_iou_and_matching_count_unmatched_objects_as_zero():
    # [0,0,10,10] and [5,0,10,10]: intersection 5 × 10 = 50, union 100 + 100 − 50 = 150 → 1/3.
    a1, b1 = box(0, 0, 10, 10), box(5, 0, 10, 10)
    assert agreement.object_agreement("detection", [a1], [b1]) == pytest.approx(1 / 3)
    # A second box the same place in both, but of another class: not a match. Units: the pair
    # (1/3) and the two unmatched boxes (0 each) → (1/3) / 3 = 1/9.
    a2, b2 = box(20, 20, 10, 10, category=0), box(20, 20, 10, 10, category=1)
    assert agreement.object_agreement("detection", [a1, a2], [b1, b2]) == pytest.approx(1 / 9)
    # Greedy takes the best pair first: [0,0,10,10]~[0,0,10,10] = 1 before [0,0,10,5] (0.5);
    # the half box is left unmatched: (1 + 0) / 2 = 0.5.
    full, half = box(0, 0, 10, 10), box(0, 0, 10, 5)
    assert agreement.object_agreement("detection", [half, full], [full]) == pytest.approx(0.5)
    # Nothing drawn by both: full agreement; something drawn by one only: none.
    assert agreement.object_agreement("detection", [], []) == 1.0
    assert agreement.object_agreement("detection", [a1], []) == 0.0


def test_mask_iou_of_a_polygon_and_a_brush_mask():
    # In a 20 × 20 image the square polygon (0,0)–(10,10) covers columns 0–9, rows 0–9: 100
    # pixels. The mask's first 50 pixels, column by column: columns 0 and 1 whole (rows 0–19)
    # and rows 0–9 of column 2. Both: rows 0–9 of columns 0, 1, 2 = 30 pixels.
    # IoU = 30 / (100 + 50 − 30) = 0.25.
    square = {"category": 0, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "bbox": None}
    pixels = np.zeros((20, 20), dtype=np.uint8, order="F")
    pixels[:, 0:2] = 1
    pixels[0:10, 2] = 1
    compressed = coco_mask.encode(pixels)
    brush = {
        "category": 0,
        "bbox": [0, 0, 3, 20],
        "segmentation": {"size": [20, 20], "counts": compressed["counts"].decode("ascii")},
    }
    assert agreement.object_agreement(
        "segmentation", [square], [brush], size=(20, 20)
    ) == pytest.approx(0.25)
    runs = {"category": 0, "bbox": None, "segmentation": {"size": [20, 20], "counts": [0, 50, 350]}}
    assert agreement.object_agreement(
        "segmentation", [square], [runs], size=(20, 20)
    ) == pytest.approx(0.25)
    # A malformed mask (runs not adding up to 400) is never decoded: it matches nothing.
    bad = {"category": 0, "bbox": None, "segmentation": {"size": [20, 20], "counts": [0, 5]}}
    assert agreement.object_agreement("segmentation", [square], [bad], size=(20, 20)) == 0.0


def person(points, bbox=(0, 0, 100, 100)):
    return {"category": 0, "bbox": list(bbox), "keypoints": points}


def test_oks_follows_cocos_formula_with_the_box_area():
    # σ = 0.05 each (not COCO's 17 names): k = 2σ = 0.1, k² = 0.01; area = 100 · 100 = 10000,
    # so 2 · area · k² = 200. Point 1: d² = 3² + 4² = 25 → exp(−25/200) = exp(−0.125) = 0.882497.
    # Point 2 at the same place (occluded counts as labelled) → exp(0) = 1.
    # OKS = (0.882497 + 1) / 2 = 0.941248.
    a = person([10, 10, 2, 50, 50, 2])
    b = person([13, 14, 2, 50, 50, 1])
    sigmas = {0: [0.05, 0.05]}
    assert agreement.oks(a, b, sigmas[0]) == pytest.approx(0.941248, abs=1e-6)
    assert agreement.object_agreement("keypoints", [a], [b], sigmas=sigmas) == pytest.approx(
        0.941248, abs=1e-6
    )
    # A class that names no sigmas gets 0.05 for each keypoint: the same figure.
    assert agreement.object_agreement("keypoints", [a], [b]) == pytest.approx(0.941248, abs=1e-6)
    # A third point labelled by a only adds a 0 term: (0.882497 + 1 + 0) / 3 = 0.627499.
    a3 = person([10, 10, 2, 50, 50, 2, 80, 80, 2])
    b3 = person([13, 14, 2, 50, 50, 1, 0, 0, 0])
    assert agreement.oks(a3, b3, [0.05] * 3) == pytest.approx(0.627499, abs=1e-6)
    # The area is the mean of the two boxes: 100×100 and 50×100 → 7500; 2 · 7500 · 0.01 = 150;
    # exp(−25/150) = 0.846482; with the second point (1): (0.846482 + 1) / 2 = 0.923241.
    narrow = person([13, 14, 2, 50, 50, 2], bbox=(0, 0, 50, 100))
    assert agreement.oks(a, narrow, [0.05, 0.05]) == pytest.approx(0.923241, abs=1e-6)
    assert math.isclose(agreement.oks(a, a, [0.05, 0.05]), 1.0)


def test_image_agreement_is_the_mean_over_pairs():
    # Three students' labels a, a, b: pairs (a,a)=1, (a,b)=0, (a,b)=0 → 1/3.
    same = lambda x, y: 1.0 if x == y else 0.0  # noqa: E731
    assert agreement.image_agreement(["a", "a", "b"], same) == pytest.approx(1 / 3)
    assert agreement.image_agreement(["a"], same) == 1.0


@pytest.mark.parametrize("images", [1, 5, 12, 100])
@pytest.mark.parametrize(("students", "per_image"), [(1, 1), (2, 2), (3, 2), (5, 3), (7, 1)])
def test_each_image_goes_to_per_image_different_students_and_the_load_is_balanced(
    images, students, per_image
):
    uids = [f"img{i}" for i in range(images)]
    people = list(range(100, 100 + students))
    pairs = distribute(uids, people, per_image)
    assert pairs == distribute(uids, people, per_image)  # deterministic
    by_image = Counter(uid for uid, _s in pairs)
    assert set(by_image) == set(uids) and set(by_image.values()) == {per_image}
    assert len(set(pairs)) == len(pairs)  # never the same student twice on an image
    load = Counter(student for _u, student in pairs)
    counts = [load.get(p, 0) for p in people]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == images * per_image


def test_the_deal_goes_round_the_table():
    # 5 images, students 1, 2, 3, two per image: 1 2 | 3 1 | 2 3 | 1 2 | 3 1 → 1: 4, 2: 3, 3: 3.
    pairs = distribute(["a", "b", "c", "d", "e"], [1, 2, 3], 2)
    assert pairs == [
        ("a", 1), ("a", 2), ("b", 3), ("b", 1), ("c", 2), ("c", 3),
        ("d", 1), ("d", 2), ("e", 3), ("e", 1),
    ]  # fmt: skip
    with pytest.raises(ValueError):
        distribute(["a"], [1, 2], 3)
