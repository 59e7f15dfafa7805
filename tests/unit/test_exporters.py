"""The exporters: streamed ZIPs that the importers read back to the same dataset."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.unit.zips import png, split_records
from webapp.datasets.archive import SafeZip
from webapp.datasets.exporters import ExportItem, export_coco, export_imagefolder
from webapp.datasets.importers import read_archive
from webapp.datasets.records import CategoryInfo, SourceAnnotation, SourceImage

PERSON = CategoryInfo("人", keypoints=["nose", "left eye", "right eye"], skeleton=[[1, 2], [1, 3]])


def dataset(kind: str) -> tuple[list[SourceImage], list[CategoryInfo]]:
    """Three small images across splits with labels or annotations for the kind."""
    if kind == "classification":
        names = ["ねこ", "dog"]
        images = [
            SourceImage("a", read=lambda: png(5, 4, seed=1), label="ねこ", split="train"),
            SourceImage("b", read=lambda: png(6, 3, seed=2), label="dog", split="train"),
            SourceImage("c", read=lambda: png(4, 4, seed=3), label="dog", split="val"),
        ]
        return images, [CategoryInfo(n) for n in names]
    if kind == "keypoints":
        anns = [
            [SourceAnnotation("人", [0.5, 1, 3, 2.25], keypoints=[1, 1.5, 2, 2, 2, 1, 0, 0, 0])],
            [],
            [SourceAnnotation("人", [0, 0, 4, 4], keypoints=[0.25, 0.5, 2, 3, 3, 2, 1, 1, 2])],
        ]
        categories = [PERSON]
    else:
        polygon = [[0.5, 0.5, 3.5, 0.5, 3.5, 2.5], [1, 1, 2, 1, 2, 2]]
        seg = polygon if kind == "segmentation" else None
        anns = [
            [SourceAnnotation("car", [0.5, 0.5, 3, 2], seg), SourceAnnotation("bus", [1, 1, 1, 1])],
            [],
            [SourceAnnotation("bus", [0.125, 0.25, 2.5, 1.75], seg and [polygon[0]])],
        ]
        categories = [CategoryInfo("car"), CategoryInfo("bus")]
    splits = ["train", "val", "test"]
    images = [
        SourceImage(f"p{i}", read=lambda i=i: png(5, 4, seed=i), annotations=a, split=splits[i])
        for i, a in enumerate(anns)
    ]
    return images, categories


def export_items(images: list[SourceImage]) -> list[ExportItem]:
    items = []
    for i, image in enumerate(images, 1):
        width, height = Image.open(io.BytesIO(image.read())).size
        items.append(
            ExportItem(f"{i:06d}.png", image.read, width, height, image.split, image.label,
                       image.annotations)
        )  # fmt: skip
    return items


def reimport(chunks, kind: str):
    data = b"".join(chunks)
    result = read_archive(SafeZip(io.BytesIO(data)), kind)
    images, rejected = split_records(result)
    assert rejected == []
    return result, sorted(images, key=lambda image: image.path.rsplit("/", 1)[-1])


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_same_annotations(got: list[SourceAnnotation], want: list[SourceAnnotation]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.category == w.category and g.iscrowd == w.iscrowd
        assert g.bbox == pytest.approx(w.bbox, abs=1e-6)
        assert g.segmentation == w.segmentation
        assert g.keypoints == w.keypoints


@pytest.mark.parametrize("kind", ["classification", "detection", "segmentation", "keypoints"])
def test_coco_export_reads_back_as_the_same_dataset(kind):
    images, categories = dataset(kind)
    result, back = reimport(export_coco(export_items(images), categories, kind), kind)
    assert result.format == "coco"
    assert [(c.name, c.keypoints, c.skeleton) for c in result.categories] == [
        (c.name, c.keypoints, c.skeleton) for c in categories
    ]
    assert len(back) == len(images)
    for got, want in zip(back, images, strict=True):
        assert got.read() == want.read()
        assert np.array_equal(pixels(got.read()), pixels(want.read()))
        assert (got.label, got.split) == (want.label, want.split)
        assert_same_annotations(got.annotations, want.annotations)


def test_imagefolder_export_reads_back_as_the_same_dataset():
    images, categories = dataset("classification")
    result, back = reimport(export_imagefolder(export_items(images), categories), "classification")
    assert result.format == "imagefolder"
    assert sorted(c.name for c in result.categories) == sorted(c.name for c in categories)
    assert [(i.path, i.label, i.split) for i in back] == [
        ("train/ねこ/000001.png", "ねこ", "train"),
        ("train/dog/000002.png", "dog", "train"),
        ("val/dog/000003.png", "dog", "val"),
    ]
    for got, want in zip(back, images, strict=True):
        assert np.array_equal(pixels(got.read()), pixels(want.read()))


def test_export_streams_a_chunk_per_image_before_reading_the_next():
    read = []

    def items():
        for i in range(3):
            read.append(i)
            yield ExportItem(f"{i}.png", lambda i=i: png(seed=i), 4, 3, "train", "cat")

    stream = export_imagefolder(items(), [CategoryInfo("cat")])
    first = next(stream)
    assert read == [0] and first.startswith(b"PK\x03\x04")
    rest = list(stream)
    assert read == [0, 1, 2] and len(rest) >= 3


def test_export_stores_images_and_deflates_json():
    images, categories = dataset("detection")
    data = b"".join(export_coco(export_items(images), categories, "detection"))
    infos = {info.filename: info for info in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert infos["images/000001.png"].compress_type == zipfile.ZIP_STORED
    assert infos["annotations/instances_train.json"].compress_type == zipfile.ZIP_DEFLATED
    assert set(infos) == {
        "images/000001.png", "images/000002.png", "images/000003.png",
        "annotations/instances_train.json", "annotations/instances_val.json",
        "annotations/instances_test.json",
    }  # fmt: skip


def test_coco_export_writes_standard_fields_with_one_based_ids():
    images, categories = dataset("keypoints")
    data = b"".join(export_coco(export_items(images), categories, "keypoints"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("annotations/instances_train.json"))
    assert doc["images"] == [{"id": 1, "file_name": "000001.png", "width": 5, "height": 4}]
    assert doc["categories"] == [
        {"id": 1, "name": "人", "supercategory": "", "keypoints": PERSON.keypoints,
         "skeleton": PERSON.skeleton}
    ]  # fmt: skip
    (ann,) = doc["annotations"]
    assert ann | {"keypoints": None} == {
        "id": 1, "image_id": 1, "category_id": 1, "bbox": [0.5, 1, 3, 2.25], "area": 6.75,
        "iscrowd": 0, "segmentation": [], "keypoints": None, "num_keypoints": 2,
    }  # fmt: skip


def test_coco_classification_export_has_one_annotation_per_image_without_bbox():
    images, categories = dataset("classification")
    data = b"".join(export_coco(export_items(images), categories, "classification"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("annotations/instances_train.json"))
    assert [(a["image_id"], a["category_id"]) for a in doc["annotations"]] == [(1, 1), (2, 2)]
    assert all("bbox" not in a for a in doc["annotations"])


def test_imagefolder_export_refuses_other_kinds():
    with pytest.raises(ValueError, match="classification"):
        export_imagefolder([], [], kind="detection")


def test_imagefolder_export_refuses_an_image_without_class():
    item = ExportItem("1.png", lambda: png(), 4, 3, "train", None)
    with pytest.raises(ValueError, match="no class"):
        list(export_imagefolder([item], []))
