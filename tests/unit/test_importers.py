"""The importers: each format read from a ZIP built in memory, and the files they refuse."""

import inspect
import io
import json
import zipfile

import numpy as np
import pytest

from tests.unit.zips import (
    cp932_zip,
    idx_images,
    idx_labels,
    png,
    safe_zip,
    split_records,
)
from webapp.datasets.archive import SafeZip
from webapp.datasets.importers import UnsupportedArchive, coco, read_archive
from webapp.datasets.importers.idx import MAX_IMAGES


def by_path(images):
    return {image.path: image for image in images}


# ImageFolder


def test_imagefolder_strips_common_top_folder_and_reads_split_folders():
    zf = safe_zip(
        {
            "mydata/train/cat/1.png": png(seed=1),
            "mydata/train/dog/2.png": png(seed=2),
            "mydata/valid/cat/3.png": png(seed=3),
            "mydata/test/dog/4.png": png(seed=4),
        }
    )
    result = read_archive(zf, "classification")
    images, rejected = split_records(result)
    assert result.format == "imagefolder"
    assert [c.name for c in result.categories] == ["cat", "dog"]
    got = {(i.path, i.split, i.label) for i in images}
    assert got == {
        ("mydata/train/cat/1.png", "train", "cat"),
        ("mydata/train/dog/2.png", "train", "dog"),
        ("mydata/valid/cat/3.png", "val", "cat"),
        ("mydata/test/dog/4.png", "test", "dog"),
    }
    assert by_path(images)["mydata/valid/cat/3.png"].read() == png(seed=3)
    assert rejected == []


def test_imagefolder_keeps_a_single_class_under_a_top_folder():
    images, _ = split_records(read_archive(safe_zip({"data/cat/1.png": png()}), "classification"))
    assert [(i.label, i.split) for i in images] == [("cat", None)]


def test_imagefolder_keeps_japanese_class_names():
    zf = safe_zip({"ねこ/1.png": png(seed=1), "いぬ/2.png": png(seed=2)})
    result = read_archive(zf, "classification")
    images, _ = split_records(result)
    assert {c.name for c in result.categories} == {"ねこ", "いぬ"}
    assert {i.label for i in images} == {"ねこ", "いぬ"}


def test_imagefolder_reads_cp932_names_from_japanese_windows():
    data = cp932_zip({"写真/ねこ/1.png": png(seed=1), "写真/いぬ/2.png": png(seed=2)})
    assert "ねこ".encode("cp932") in data and "ねこ".encode() not in data
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    images, _ = split_records(read_archive(SafeZip(io.BytesIO(data)), "classification"))
    assert {(i.path, i.label) for i in images} == {
        ("写真/ねこ/1.png", "ねこ"),
        ("写真/いぬ/2.png", "いぬ"),
    }


def test_imagefolder_rejects_files_not_inside_a_class_folder():
    zf = safe_zip({"cat/1.png": png(), "dog/2.png": png(), "stray.png": png(), "README.txt": "hi"})
    images, rejected = split_records(read_archive(zf, "classification"))
    assert len(images) == 2
    assert {r.path for r in rejected} == {"stray.png", "README.txt"}
    assert all("not inside a class folder" in r.reason for r in rejected)


def test_imagefolder_reads_entries_only_when_asked(monkeypatch):
    zf = safe_zip({"cat/1.png": png(seed=1), "dog/2.png": png(seed=2)})
    calls = []
    original = zf.read
    monkeypatch.setattr(zf, "read", lambda entry: calls.append(entry.name) or original(entry))
    images, _ = split_records(read_archive(zf, "classification"))
    assert calls == []
    assert images[1].read() == png(seed=2)
    assert calls == ["dog/2.png"]


def test_image_folders_uploaded_for_detection_say_which_layouts_work():
    with pytest.raises(UnsupportedArchive, match="COCO.*Pascal VOC.*YOLO"):
        read_archive(safe_zip({"cat/1.png": png()}), "detection")


def test_zip_with_only_loose_files_is_unsupported():
    with pytest.raises(UnsupportedArchive, match="class folder"):
        read_archive(safe_zip({"1.png": png(), "2.png": png()}), "classification")


# COCO


def coco_doc(**extra) -> dict:
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 4, "height": 3},
            {"id": 2, "file_name": "b.png", "width": 4, "height": 3},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [0.5, 1, 2, 1.5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [1, 0, 1, 1], "iscrowd": 0},
        ],
        "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "犬"}],
    }
    doc.update(extra)
    return doc


def test_coco_detection_reads_boxes_split_and_categories():
    zf = safe_zip(
        {
            "annotations/instances_val2017.json": json.dumps(coco_doc()),
            "images/a.png": png(seed=1),
            "images/b.png": png(seed=2),
        }
    )
    result = read_archive(zf, "detection")
    images, rejected = split_records(result)
    assert result.format == "coco"
    assert [c.name for c in result.categories] == ["cat", "犬"]
    a, b = sorted(images, key=lambda i: i.path)
    assert (a.path, a.split) == ("images/a.png", "val")
    assert [(x.category, x.bbox) for x in a.annotations] == [
        ("cat", [0.5, 1.0, 2.0, 1.5]),
        ("犬", [1.0, 0.0, 1.0, 1.0]),
    ]
    assert b.annotations == [] and b.read() == png(seed=2)
    assert rejected == []


def test_coco_finds_images_by_base_name_anywhere():
    zf = safe_zip(
        {"labels/train.json": json.dumps(coco_doc()), "x/a.png": png(), "y/z/b.png": png()}
    )
    images, rejected = split_records(read_archive(zf, "detection"))
    assert {(i.path, i.split) for i in images} == {("x/a.png", "train"), ("y/z/b.png", "train")}
    assert rejected == []


def test_coco_rejects_missing_images_and_images_no_file_mentions():
    zf = safe_zip({"coco.json": json.dumps(coco_doc()), "a.png": png(), "extra.png": png()})
    images, rejected = split_records(read_archive(zf, "detection"))
    assert [i.path for i in images] == ["a.png"]
    reasons = {r.path: r.reason for r in rejected}
    assert "coco.json lists this image" in reasons["b.png"]
    assert reasons["extra.png"] == "No annotation file mentions this image."


def test_coco_annotation_with_unknown_category_rejects_its_image():
    doc = coco_doc()
    doc["annotations"][0]["category_id"] = 99
    zf = safe_zip({"coco.json": json.dumps(doc), "a.png": png(), "b.png": png()})
    images, rejected = split_records(read_archive(zf, "detection"))
    assert [i.path for i in images] == ["b.png"]
    assert "category 99" in rejected[0].reason


def test_coco_segmentation_keeps_polygons_and_rle_as_uploaded():
    doc = coco_doc()
    doc["annotations"][0]["segmentation"] = [[0, 0, 3, 0, 3, 2], [1, 1, 2, 1, 2, 2]]
    # 3×4 image, column by column: 3 background, 4 foreground (column 1 and the top of 2), 5.
    crowd_mask = {"counts": [3, 4, 5], "size": [3, 4]}
    doc["annotations"][1] |= {"segmentation": crowd_mask, "iscrowd": 1}
    zf = safe_zip({"coco.json": json.dumps(doc), "a.png": png(), "b.png": png()})
    images, rejected = split_records(read_archive(zf, "segmentation"))
    first, crowd = by_path(images)["a.png"].annotations
    assert first.segmentation == [[0, 0, 3, 0, 3, 2], [1, 1, 2, 1, 2, 2]]
    assert crowd.segmentation == crowd_mask and crowd.bbox == [1, 0, 1, 1] and crowd.iscrowd
    assert rejected == []


def test_coco_bad_rle_refuses_its_image_only_and_names_the_file_annotation_and_field():
    doc = coco_doc()
    doc["images"].append({"id": 3, "file_name": "c.png", "width": 4, "height": 3})
    doc["annotations"][1] |= {"segmentation": {"counts": [0, 4], "size": [3, 4]}, "iscrowd": 1}
    doc["annotations"].append(
        {"id": 5, "image_id": 3, "category_id": 7, "segmentation": {"counts": [81], "size": [9, 9]}}
    )
    doc["annotations"].append(
        {"id": 6, "image_id": 2, "category_id": 7, "segmentation": [[0, 0, 3, 0, 3, 2]]}
    )
    zf = safe_zip(
        {"ann/coco.json": json.dumps(doc), "a.png": png(), "b.png": png(), "c.png": png()}
    )
    images, rejected = split_records(read_archive(zf, "segmentation"))
    assert [i.path for i in images] == ["b.png"]
    reasons = {r.path: r.reason for r in rejected}
    assert reasons["a.png"].startswith("ann/coco.json, annotation 2: ")
    assert "RLE" in reasons["a.png"] and "add up to height × width = 12, not 4" in reasons["a.png"]
    assert "annotation 5" in reasons["c.png"] and "9×9" in reasons["c.png"]


def test_coco_keypoints_keep_names_skeleton_and_triples():
    doc = coco_doc(
        categories=[
            {"id": 1, "name": "person", "keypoints": ["nose", "l_eye"], "skeleton": [[1, 2]]}
        ],
        annotations=[
            {"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 4, 3],
             "keypoints": [1, 1, 2, 0, 0, 0], "num_keypoints": 1},
        ],
    )  # fmt: skip
    zf = safe_zip({"person_keypoints_train.json": json.dumps(doc), "a.png": png(), "b.png": png()})
    result = read_archive(zf, "keypoints")
    images, _ = split_records(result)
    assert [(c.name, c.keypoints, c.skeleton) for c in result.categories] == [
        ("person", ["nose", "l_eye"], [[1, 2]])
    ]
    (ann,) = by_path(images)["b.png"].annotations
    assert ann.keypoints == [1, 1, 2, 0, 0, 0] and ann.bbox == [0, 0, 4, 3]


def test_coco_detection_file_uploaded_for_classification_says_it_looks_like_detection():
    zf = safe_zip({"coco.json": json.dumps(coco_doc()), "a.png": png(), "b.png": png()})
    with pytest.raises(UnsupportedArchive, match="looks like a dataset for object detection"):
        read_archive(zf, "classification")


def test_coco_detection_file_uploaded_for_keypoints_is_refused():
    zf = safe_zip({"coco.json": json.dumps(coco_doc()), "a.png": png(), "b.png": png()})
    with pytest.raises(UnsupportedArchive, match="looks like a dataset for object detection"):
        read_archive(zf, "keypoints")


def test_coco_invalid_json_names_the_file_and_line():
    broken = '{"images": [],\n "annotations": [,]}'
    with pytest.raises(UnsupportedArchive, match=r"ann/coco\.json.*line 2"):
        read_archive(safe_zip({"ann/coco.json": broken, "a.png": png()}), "detection")


def test_unrelated_broken_json_does_not_stop_an_image_folder():
    zf = safe_zip({"cat/1.png": png(), "notes.json": "{oops"})
    images, rejected = split_records(read_archive(zf, "classification"))
    assert [i.label for i in images] == ["cat"]
    assert [r.path for r in rejected] == ["notes.json"]


# YOLO


def yolo_files(label: str, names: str = "names: [cat, dog]\n") -> dict[str, bytes | str]:
    return {
        "data.yaml": names,
        "images/train/a.png": png(10, 20, seed=1),
        "labels/train/a.txt": label,
        "images/val/b.png": png(10, 20, seed=2),
    }


def test_yolo_with_data_yaml_converts_boxes_to_pixels():
    zf = safe_zip(yolo_files("1 0.5 0.5 0.2 0.1\n\n0 0.1 0.2 0.2 0.4\n"))
    result = read_archive(zf, "detection")
    images, rejected = split_records(result)
    assert result.format == "yolo" and [c.name for c in result.categories] == ["cat", "dog"]
    a = by_path(images)["images/train/a.png"]
    assert a.split == "train" and a.read() == png(10, 20, seed=1)
    assert [x.category for x in a.annotations] == ["dog", "cat"]
    assert a.annotations[0].bbox == pytest.approx([4.0, 9.0, 2.0, 2.0])
    assert a.annotations[1].bbox == pytest.approx([0.0, 0.0, 2.0, 8.0])
    assert rejected == []


def test_yolo_image_without_label_file_is_a_background_image():
    images, _ = split_records(read_archive(safe_zip(yolo_files("0 0.5 0.5 1 1")), "detection"))
    b = by_path(images)["images/val/b.png"]
    assert b.split == "val" and b.annotations == []


def test_yolo_names_as_a_dict_in_data_yaml():
    zf = safe_zip(yolo_files("1 0.5 0.5 1 1", names="names:\n  0: ねこ\n  1: いぬ\n"))
    images, _ = split_records(read_archive(zf, "detection"))
    assert by_path(images)["images/train/a.png"].annotations[0].category == "いぬ"


@pytest.mark.parametrize(
    ("line", "words"),
    [("0 0.5 0.5 0.2 0.1\n5 0.5 0.5 0.2 0.1", "line 2 names class 5"),
     ("0 0.5 1.5 0.2 0.1", "line 1 has values outside 0–1"),
     ("0 0.5 0.5", "line 1 has 3 values")],
)  # fmt: skip
def test_yolo_bad_label_line_rejects_the_image_with_its_line_number(line, words):
    images, rejected = split_records(read_archive(safe_zip(yolo_files(line)), "detection"))
    assert [i.path for i in images] == ["images/val/b.png"]
    assert rejected[0].path == "images/train/a.png" and words in rejected[0].reason


def test_yolo_without_class_names_is_refused():
    files = yolo_files("0 0.5 0.5 1 1")
    del files["data.yaml"]
    with pytest.raises(UnsupportedArchive, match="classes.txt"):
        read_archive(safe_zip(files), "detection")


def test_yolo_reads_class_names_from_classes_txt():
    files = yolo_files("0 0.5 0.5 1 1")
    del files["data.yaml"]
    files["classes.txt"] = "bird\n"
    result = read_archive(safe_zip(files), "detection")
    assert [c.name for c in result.categories] == ["bird"]


# Pascal VOC


def voc_xml(file_name: str, objects: str) -> str:
    return f"<annotation><filename>{file_name}</filename>{objects}</annotation>"


BOX = "<object><name>{}</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>6</ymax></bndbox></object>"  # noqa: E501


def test_voc_converts_one_based_corners_and_reads_image_sets():
    zf = safe_zip(
        {
            "VOC/Annotations/0001.xml": voc_xml("0001.jpg", BOX.format("dog") + BOX.format("cat")),
            "VOC/Annotations/0002.xml": voc_xml("0002.jpg", BOX.format("dog")),
            "VOC/JPEGImages/0001.jpg": png(seed=1),
            "VOC/JPEGImages/0002.jpg": png(seed=2),
            "VOC/ImageSets/Main/train.txt": "0001\n",
            "VOC/ImageSets/Main/val.txt": "0002\n",
        }
    )
    result = read_archive(zf, "detection")
    images, rejected = split_records(result)
    assert result.format == "voc" and [c.name for c in result.categories] == ["cat", "dog"]
    first = by_path(images)["VOC/JPEGImages/0001.jpg"]
    assert first.split == "train" and first.annotations[0].bbox == [0.0, 1.0, 3.0, 5.0]
    assert by_path(images)["VOC/JPEGImages/0002.jpg"].split == "val"
    assert rejected == []


def test_voc_refuses_xml_with_a_doctype_entity_bomb():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<annotation><filename>bad.png</filename>"
        "<object><name>&lol2;</name></object></annotation>"
    )
    zf = safe_zip(
        {
            "a.xml": voc_xml("a.png", BOX.format("dog")),
            "a.png": png(),
            "bad.xml": bomb,
            "bad.png": png(),
        }
    )
    images, rejected = split_records(read_archive(zf, "detection"))
    assert [i.path for i in images] == ["a.png"]
    reasons = {r.path: r.reason for r in rejected}
    assert "DOCTYPE" in reasons["bad.xml"]
    assert "bad.png" in reasons


# MNIST IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_pair_by_prefix_with_splits(gz):
    train = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    test = np.full((2, 28, 28), 7, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    zf = safe_zip(
        {
            f"mnist/train-images-idx3-ubyte{suffix}": idx_images(train, gz=gz),
            f"mnist/train-labels-idx1-ubyte{suffix}": idx_labels([5, 0, 4], gz=gz),
            f"mnist/t10k-images-idx3-ubyte{suffix}": idx_images(test, gz=gz),
            f"mnist/t10k-labels-idx1-ubyte{suffix}": idx_labels([1, 9], gz=gz),
        }
    )
    result = read_archive(zf, "classification")
    images, rejected = split_records(result)
    assert result.format == "idx"
    assert [c.name for c in result.categories] == [str(d) for d in range(10)]
    assert [(i.label, i.split) for i in images] == [
        ("5", "train"), ("0", "train"), ("4", "train"), ("1", "test"), ("9", "test")
    ]  # fmt: skip
    assert images[1].pixels.shape == (28, 28) and images[1].pixels.dtype == np.uint8
    assert np.array_equal(images[1].pixels, train[1]) and images[1].read is None
    assert rejected == []


def test_idx_count_mismatch_is_refused():
    zf = safe_zip(
        {
            "train-images-idx3-ubyte": idx_images(np.zeros((3, 28, 28), np.uint8)),
            "train-labels-idx1-ubyte": idx_labels([1, 2]),
        }
    )
    with pytest.raises(UnsupportedArchive, match="3 images but .* 2 labels"):
        read_archive(zf, "classification")


def test_idx_header_claiming_too_many_images_is_refused():
    header = bytes([0, 0, 8, 3]) + (MAX_IMAGES + 1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    zf = safe_zip({"train-images-idx3-ubyte": header, "train-labels-idx1-ubyte": idx_labels([1])})
    with pytest.raises(UnsupportedArchive, match="at most"):
        read_archive(zf, "classification")


def test_idx_data_shorter_than_its_header_rejects_the_file():
    short = idx_images(np.zeros((2, 28, 28), np.uint8))[:-10]
    zf = safe_zip({"train-images-idx3-ubyte": short, "train-labels-idx1-ubyte": idx_labels([1, 2])})
    images, rejected = split_records(read_archive(zf, "classification"))
    assert images == [] and "header says" in rejected[0].reason


@pytest.mark.parametrize("name", ["kmnist-train-imgs.npz", "x.npy", "model.pkl", "d.pickle"])
def test_pickled_numpy_files_are_refused_with_a_pointer_to_idx(name):
    with pytest.raises(UnsupportedArchive, match="IDX files"):
        read_archive(safe_zip({name: b"PK\x03\x04 not opened"}), "classification")


def test_npz_next_to_usable_images_is_one_rejection():
    zf = safe_zip({"cat/1.png": png(), "extra.npz": b"never loaded"})
    images, rejected = split_records(read_archive(zf, "classification"))
    assert len(images) == 1 and rejected[0].path == "extra.npz"


# CIFAR-10


def cifar_record(label: int, seed: int) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return bytes([label]) + pixels.transpose(2, 0, 1).tobytes(), pixels


def test_cifar_binary_records_become_pixels_with_names_and_splits():
    (r1, p1), (r2, p2) = cifar_record(3, 1), cifar_record(9, 2)
    zf = safe_zip(
        {"cifar-10-batches-bin/data_batch_1.bin": r1, "cifar-10-batches-bin/test_batch.bin": r2}
    )
    result = read_archive(zf, "classification")
    images, rejected = split_records(result)
    assert result.format == "cifar10" and result.categories[0].name == "airplane"
    assert [(i.label, i.split) for i in images] == [("cat", "train"), ("truck", "test")]
    assert np.array_equal(images[0].pixels, p1) and np.array_equal(images[1].pixels, p2)
    assert images[0].pixels.shape == (32, 32, 3) and rejected == []


def test_cifar_reads_names_from_batches_meta_txt():
    zf = safe_zip({"data_batch_1.bin": cifar_record(1, 1)[0], "batches.meta.txt": "a\nb\n\n"})
    images, _ = split_records(read_archive(zf, "classification"))
    assert [i.label for i in images] == ["b"]


def test_cifar_python_version_alone_is_refused_pointing_to_the_binary_version():
    zf = safe_zip({"cifar-10-batches-py/data_batch_1": b"\x80\x04 pickle", "data_batch_2": b"x"})
    with pytest.raises(UnsupportedArchive, match="CIFAR-10 binary version"):
        read_archive(zf, "classification")


def test_cifar_python_file_next_to_binary_batches_is_one_rejection():
    zf = safe_zip({"data_batch_1.bin": cifar_record(0, 1)[0], "data_batch_1": b"\x80 pickle"})
    images, rejected = split_records(read_archive(zf, "classification"))
    assert len(images) == 1
    assert rejected[0].path == "data_batch_1" and "cifar-10-binary.tar.gz" in rejected[0].reason


def test_cifar_uploaded_for_detection_says_it_is_classification():
    with pytest.raises(UnsupportedArchive, match="looks like a dataset for classification"):
        read_archive(safe_zip({"data_batch_1.bin": cifar_record(0, 1)[0]}), "detection")


def test_coco_file_over_the_size_limit_is_refused(monkeypatch):
    monkeypatch.setattr(coco, "MAX_JSON_BYTES", 10)
    zf = safe_zip({"coco.json": json.dumps(coco_doc()), "a.png": png(), "b.png": png()})
    with pytest.raises(UnsupportedArchive, match="coco.json is larger than"):
        read_archive(zf, "detection")


def test_yolo_reads_roboflow_split_folders():
    zf = safe_zip(
        {
            "data.yaml": "names: [cat]",
            "valid/images/a.png": png(10, 20),
            "valid/labels/a.txt": "0 0.5 0.5 1 1",
        }
    )
    images, rejected = split_records(read_archive(zf, "detection"))
    assert [(i.split, i.annotations[0].bbox) for i in images] == [("val", [0, 0, 10, 20])]
    assert rejected == []


@pytest.mark.parametrize(
    ("files", "kind"),
    [({"cat/1.png": b""}, "classification"),
     ({"coco.json": json.dumps(coco_doc()), "a.png": b"", "b.png": b""}, "detection")],
)  # fmt: skip
def test_records_are_yielded_lazily(files, kind):
    assert inspect.isgenerator(read_archive(safe_zip(files), kind).records)
