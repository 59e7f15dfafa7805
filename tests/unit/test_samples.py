"""The built-in sample datasets: every entry builds offline, lazily and the same way twice."""

import itertools
import socket
import subprocess
import sys

import numpy as np
import pytest

from webapp.datasets.records import KINDS, SourceImage
from webapp.datasets.samples import (
    PERSON_KEYPOINTS,
    PERSON_SKELETON,
    SAMPLES,
    Sample,
    build_sample,
)

SHAPES = {
    "digits": (32, 32),
    "mnist5k": (28, 28),
    "faces": (25, 25),
    "shapes_detection": (64, 64, 3),
    "shapes_segmentation": (64, 64, 3),
    "keypoints": (64, 64, 3),
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _records(key: str, limit: int | None = None) -> list[SourceImage]:
    return list(itertools.islice(build_sample(key).records, limit))


def test_registry_entries_are_described():
    assert set(SAMPLES) == set(SHAPES)
    for key, sample in SAMPLES.items():
        assert isinstance(sample, Sample)
        assert sample.key == key
        assert sample.kind in KINDS
        for text in (sample.title, sample.description):
            assert set(text) == {"ja", "en"}
            assert all(isinstance(words, str) and words for words in text.values())
        assert sample.count > 0


def test_unknown_key_names_the_samples():
    with pytest.raises(KeyError, match="digits"):
        build_sample("cifar1000")


@pytest.mark.parametrize("key", list(SHAPES))
def test_every_sample_builds_offline_with_valid_records(key, no_network):
    result = build_sample(key)
    assert result.format == f"sample:{key}"
    names = [category.name for category in result.categories]
    records = list(result.records)  # all of them: mnist5k's 5,000 take about a second
    assert len(records) == SAMPLES[key].count
    kind = SAMPLES[key].kind
    for record in records:
        assert isinstance(record, SourceImage)
        assert record.read is None
        assert record.pixels.dtype == np.uint8
        assert record.pixels.shape == SHAPES[key]
        assert record.split is None
        assert record.path.startswith(f"{key}/")
        if kind == "classification":
            assert record.label in names
            assert record.path.split("/")[1] == record.label
            assert not record.annotations
        else:
            assert record.label is None
            assert all(a.category in names for a in record.annotations)
    if kind == "classification":
        assert {record.label for record in records} == set(names)
        assert all(record.pixels.max() > record.pixels.min() for record in records[::97])


@pytest.mark.parametrize("key", ["shapes_detection", "shapes_segmentation"])
def test_shapes_boxes_match_polygons_and_pixels(key):
    records = _records(key)
    assert all(1 <= len(record.annotations) <= 3 for record in records)
    corners = {"circle": 24, "square": 4, "triangle": 3}
    for record in records:
        pixels = record.pixels.astype(int)  # (64, 64, 3)
        height, width = pixels.shape[:2]
        background = pixels[0, 0]
        for annotation in record.annotations:
            x, y, w, h = annotation.bbox
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert w > 0 and h > 0
            if key == "shapes_segmentation":
                (polygon,) = annotation.segmentation
                assert len(polygon) == 2 * corners[annotation.category]
                xs, ys = polygon[0::2], polygon[1::2]
                bounds = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                assert np.allclose(bounds, annotation.bbox, atol=1)
            else:
                assert annotation.segmentation is None  # a detection set holds boxes only
            inside = pixels[int(y) : int(y + h) + 1, int(x) : int(x + w) + 1]
            assert (inside != background).any(axis=-1).sum() >= 0.3 * w * h


def test_shapes_samples_share_their_pictures():
    detection = _records("shapes_detection", 5)
    segmentation = _records("shapes_segmentation", 5)
    for a, b in zip(detection, segmentation, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert [(x.category, x.bbox) for x in a.annotations] == [
            (x.category, x.bbox) for x in b.annotations
        ]
        assert all(x.segmentation is None for x in a.annotations)  # detection: boxes only


def test_keypoints_lie_inside_the_image_and_the_box():
    result = build_sample("keypoints")
    (person,) = result.categories
    assert person.name == "person"
    assert person.keypoints == PERSON_KEYPOINTS
    assert len(person.keypoints) == len(set(person.keypoints)) == 9
    for a, b in person.skeleton:
        assert 1 <= a <= len(person.keypoints) and 1 <= b <= len(person.keypoints)
    for record in result.records:
        (annotation,) = record.annotations
        height, width = record.pixels.shape[:2]
        keypoints = annotation.keypoints
        assert len(keypoints) == 3 * len(person.keypoints)
        x, y, w, h = annotation.bbox
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        for px, py, visible in zip(*[iter(keypoints)] * 3, strict=True):
            assert visible == 2
            assert 0 <= px < width and 0 <= py < height
            assert x <= px <= x + w and y <= py <= y + h
        pixels = record.pixels.astype(int)
        hx, hy = round(keypoints[0]), round(keypoints[1])
        assert (pixels[hy, hx] != pixels[0, 0]).any()  # the head is drawn where its point is


def _points(annotation) -> dict[str, np.ndarray]:
    flat = annotation.keypoints
    return {n: np.array(flat[3 * i : 3 * i + 2]) for i, n in enumerate(PERSON_KEYPOINTS)}


def test_the_skeleton_joins_the_limbs_through_the_knees():
    named = {tuple(PERSON_KEYPOINTS[i - 1] for i in pair) for pair in PERSON_SKELETON}
    assert named == {
        ("head", "neck"),
        ("neck", "left_hand"),
        ("neck", "right_hand"),
        ("neck", "hip"),
        ("hip", "left_knee"),
        ("hip", "right_knee"),
        ("left_knee", "left_foot"),
        ("right_knee", "right_foot"),
    }


def test_left_is_the_figures_own_left_on_the_images_right():
    """The figure faces us: measured across its spine (hip → neck, turned by up to 25°), its
    left hand, knee and foot lie on the image's right, its right ones on the image's left."""
    for record in _records("keypoints", 200):
        p = _points(record.annotations[0])
        up = p["neck"] - p["hip"]  # (2,) image pixels, y down
        across = np.array([-up[1], up[0]])  # the image's right when the figure stands upright
        for limb in ("hand", "knee", "foot"):
            assert (p[f"left_{limb}"] - p["hip"]) @ across > 0, (record.path, limb)
            assert (p[f"right_{limb}"] - p["hip"]) @ across < 0, (record.path, limb)


def test_the_legs_bend_at_the_knees():
    bends = []
    for record in _records("keypoints", 200):
        p = _points(record.annotations[0])
        for side in ("left", "right"):
            thigh, shin = p[f"{side}_knee"] - p["hip"], p[f"{side}_foot"] - p[f"{side}_knee"]
            cosine = thigh @ shin / (np.linalg.norm(thigh) * np.linalg.norm(shin))
            bends.append(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    assert min(bends) > 5 and np.median(bends) > 20  # never a straight leg, most clearly bent


def test_the_samples_are_large_enough_to_train_on():
    assert SAMPLES["keypoints"].count >= 500 and SAMPLES["shapes_segmentation"].count >= 500
    for key in ("keypoints", "shapes_segmentation"):
        assert 64 <= SAMPLES[key].image_shape[0] <= 128


@pytest.mark.parametrize("key", list(SHAPES))
def test_two_builds_give_the_same_records(key):
    first, second = _records(key, 3), _records(key, 3)
    for a, b in zip(first, second, strict=True):
        assert a.path == b.path
        assert a.label == b.label
        assert a.annotations == b.annotations
        assert np.array_equal(a.pixels, b.pixels)


def test_importing_the_registry_loads_no_dataset_library():
    code = (
        "import sys\n"
        "import webapp.datasets.samples as samples\n"
        "samples.build_sample('digits')\n"  # building is lazy too: nothing read yet
        "loaded = [m for m in ('sklearn', 'skimage', 'mlxtend') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
