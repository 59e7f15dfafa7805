"""COCO round trips of masks and keypoints: a hand-made COCO ZIP (polygons, RLE masks compressed
and not, keypoints with every visibility flag) is uploaded, exported, uploaded again, and the two
datasets hold the same annotations; a bad annotation refuses its image only, saying where."""

import io
import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.unit.test_dataset_api import Api, content, png, upload_and_ingest, zip_of
from webapp.datasets import masks, queries
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db

HEIGHT, WIDTH = 24, 32  # every picture of these ZIPs


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_PROCESSES = 1


def _picture(seed: int) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3)))


def _mask(y: slice, x: slice) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)  # (H, W)
    mask[y, x] = 1
    return mask


def _compressed(mask: np.ndarray) -> dict:
    """pycocotools' own compressed RLE, counts as text (what COCO JSON files hold)."""
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _uncompressed(mask: np.ndarray) -> dict:
    """COCO's iscrowd form: run lengths as a list, column by column, from background."""
    flat = mask.T.reshape(-1)  # (H * W,), Fortran order
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": [HEIGHT, WIDTH], "counts": runs}


def _images(*names: str) -> list[dict]:
    return [
        {"id": i, "file_name": name, "width": WIDTH, "height": HEIGHT}
        for i, name in enumerate(names, 1)
    ]


def _zip(doc: dict, count: int) -> bytes:
    files = {"annotations/instances_train.json": json.dumps(doc).encode()}
    files |= {f"images/{i}.png": _picture(i) for i in range(1, count + 1)}
    return zip_of(files)


def _rows(dataset: Dataset) -> list[tuple]:
    """(image sha256, category, bbox, segmentation, keypoints, iscrowd, area) of the head."""
    names = {c.index: c.name for c in queries.categories_at(dataset)}
    rows = []
    items = queries.items_at(dataset).select_related("image").prefetch_related("annotations")
    for item in items:
        for a in item.annotations.all():
            rows.append(
                (
                    item.image.sha256,
                    names[a.category_index],
                    json.dumps(a.bbox),
                    json.dumps(a.segmentation, sort_keys=True),
                    json.dumps(a.keypoints),
                    a.iscrowd,
                    round(a.area, 3),
                )
            )
    return sorted(rows)


def _export(world, dataset: Dataset) -> tuple[bytes, dict]:
    response = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/export", format="coco")
    assert response.status_code == 200
    data = content(response)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("annotations/instances_train.json"))
    return data, doc


def _rejected(world, dataset: Dataset) -> dict[str, str]:
    body = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}").json()
    return {r["file"]: r["reason"] for r in body["rejected"]}


# --- segmentation: polygons and RLE masks ------------------------------------------------------

SQUARE = _mask(slice(2, 10), slice(3, 13))  # 8 × 10 pixels
BLOB = _mask(slice(12, 22), slice(20, 30))  # 10 × 10
CROWD = _mask(slice(0, 24), slice(0, 5))  # a left stripe, the whole height: runs wrap columns


def _segmentation_doc() -> dict:
    return {
        "images": _images("1.png", "2.png", "3.png", "4.png"),
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[3, 2, 13, 2, 13, 10, 3, 10]], "bbox": [3, 2, 10, 8], "area": 80},
            {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 1,
             "segmentation": _uncompressed(CROWD), "bbox": [0, 0, 5, 24]},
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 0,
             "segmentation": _compressed(SQUARE)},  # no bbox: read from the mask
            {"id": 4, "image_id": 2, "category_id": 2, "iscrowd": 0,
             "segmentation": _compressed(BLOB), "bbox": [20, 12, 10, 10]},
            # Image 3: a mask whose runs do not cover the image refuses image 3 only.
            {"id": 5, "image_id": 3, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [HEIGHT, WIDTH], "counts": [10, 20]}},
            # Image 4: a mask sized for another picture.
            {"id": 6, "image_id": 4, "category_id": 1, "iscrowd": 0,
             "segmentation": _compressed(np.ones((8, 8), dtype=np.uint8))},
        ],
        "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "blob"}],
    }  # fmt: skip


def test_masks_go_round_trip_as_polygons_and_rle_compressed_or_not(world):
    original = upload_and_ingest(world, "alice", _zip(_segmentation_doc(), 4), "segmentation")
    rejected = _rejected(world, original)
    assert set(rejected) == {"images/3.png", "images/4.png"}
    assert rejected["images/3.png"].startswith("annotations/instances_train.json, annotation 5: ")
    assert f"height × width = {HEIGHT * WIDTH}, not 30" in rejected["images/3.png"]
    assert "annotation 6" in rejected["images/4.png"] and "8×8" in rejected["images/4.png"]

    stored = [
        a
        for item in queries.items_at(original).prefetch_related("annotations")
        for a in item.annotations.all()
    ]
    kept = {json.dumps(a.segmentation, sort_keys=True): a for a in stored}
    assert len(kept) == len(stored) == 4
    polygon = kept[json.dumps([[3.0, 2.0, 13.0, 2.0, 13.0, 10.0, 3.0, 10.0]])]  # numbers as floats
    assert polygon.area == 80 and not polygon.iscrowd
    crowd = kept[json.dumps(_uncompressed(CROWD), sort_keys=True)]  # kept as uploaded
    assert crowd.iscrowd and crowd.area == CROWD.sum() and crowd.bbox == [0, 0, 5, 24]
    square = kept[json.dumps(_compressed(SQUARE), sort_keys=True)]
    assert square.bbox == [3, 2, 10, 8] and square.area == SQUARE.sum()  # box from the mask
    assert json.dumps(_compressed(BLOB), sort_keys=True) in kept

    data, doc = _export(world, original)
    exported = {json.dumps(a["segmentation"], sort_keys=True): a for a in doc["annotations"]}
    crowd_out = exported[json.dumps(_uncompressed(CROWD), sort_keys=True)]
    assert crowd_out["iscrowd"] == 1 and crowd_out["area"] == CROWD.sum()
    square_out = exported[json.dumps(_compressed(SQUARE), sort_keys=True)]
    assert square_out["bbox"] == [3, 2, 10, 8] and square_out["iscrowd"] == 0
    for ann in doc["annotations"]:  # what pycocotools makes of it is what was uploaded
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            rle = (
                mask_utils.frPyObjects(seg, HEIGHT, WIDTH)
                if isinstance(seg["counts"], list)
                else seg
            )
            assert float(mask_utils.area(rle)) == ann["area"]

    copy = upload_and_ingest(world, "alice", data, "segmentation")
    assert _rejected(world, copy) == {}
    assert _rows(copy) == _rows(original)


def test_items_with_rle_masks_are_listed_and_drawn(world):
    dataset = upload_and_ingest(world, "alice", _zip(_segmentation_doc(), 4), "segmentation")
    body = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/items").json()
    segmentations = [a["segmentation"] for item in body["items"] for a in item["annotations"]]
    assert _compressed(SQUARE) in segmentations and _uncompressed(CROWD) in segmentations
    client = world.client("alice")
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 200
    for item in body["items"]:
        page = client.get(f"/datasets/{dataset.pk}/items/{item['id']}/")
        assert page.status_code == 200
        assert page.content.decode().count("<polygon") >= len(item["annotations"])


def test_an_rle_outline_follows_its_mask():
    (outline,) = masks.outline(_compressed(SQUARE))
    xs, ys = outline[0::2], outline[1::2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (3.5, 12.5, 2.5, 9.5)  # pixel centres
    assert masks.outline({"size": [2, 2], "counts": [9]}) == []  # invalid: drawn as nothing


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        ([5, -1, 764], "negative"),
        ("0" * 3 + "\x7f", "never writes"),
        ("0" * 3 + "l", "middle of a number"),
        ([1.5, 766.5], "list of run lengths"),
    ],
)
def test_a_bad_rle_is_named_before_anything_decodes_it(counts, words):
    with pytest.raises(masks.MaskError, match=words):
        masks.check_rle({"size": [HEIGHT, WIDTH], "counts": counts})


# --- keypoints: names, skeleton, visibility flags -----------------------------------------------

NAMES = ["head", "neck", "left_hand", "right_hand"]
SKELETON = [[1, 2], [2, 3], [2, 4]]


def _keypoints_doc() -> dict:
    return {
        "images": _images("1.png", "2.png", "3.png"),
        "annotations": [
            # v: 2 visible, 1 labelled but hidden, 0 not labelled (x = y = 0); num_keypoints is
            # wrong on purpose: export counts it again.
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 9,
             "keypoints": [10, 4, 2, 10, 8, 2, 14, 12, 1, 0, 0, 0], "bbox": [5, 1, 12, 14]},
            {"id": 2, "image_id": 2, "category_id": 1, "iscrowd": 0,
             "keypoints": [20, 5, 2, 20, 9, 2, 24, 15, 2, 16, 15, 2]},  # no bbox: the points'
            # Image 3: five keypoints for a category naming four refuses image 3 only.
            {"id": 3, "image_id": 3, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 4, 4],
             "keypoints": [1, 1, 2] * 5},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person", "keypoints": NAMES,
             "skeleton": SKELETON},
        ],
    }  # fmt: skip


def test_keypoints_go_round_trip_with_names_skeleton_and_visibility(world):
    original = upload_and_ingest(world, "alice", _zip(_keypoints_doc(), 3), "keypoints")
    rejected = _rejected(world, original)
    assert list(rejected) == ["images/3.png"]
    assert "annotation 3" in rejected["images/3.png"]
    assert "15 numbers" in rejected["images/3.png"] and "needs 12" in rejected["images/3.png"]

    data, doc = _export(world, original)
    (category,) = doc["categories"]
    assert (category["name"], category["keypoints"], category["skeleton"]) == (
        "person",
        NAMES,
        SKELETON,
    )
    by_count = {a["num_keypoints"]: a for a in doc["annotations"]}
    assert set(by_count) == {3, 4}  # labelled points (v > 0), whatever the upload said
    assert by_count[3]["keypoints"][2::3] == [2, 2, 1, 0]
    assert by_count[4]["bbox"] == [16, 5, 8, 10]  # around the points when none was given
    assert all(a["iscrowd"] == 0 for a in doc["annotations"])

    copy = upload_and_ingest(world, "alice", data, "keypoints")
    assert _rejected(world, copy) == {}
    assert _rows(copy) == _rows(original)
    assert [(c.name, c.keypoints, c.skeleton) for c in queries.categories_at(copy)] == [
        ("person", NAMES, SKELETON)
    ]


def test_a_skeleton_pointing_past_the_keypoints_refuses_the_file_naming_it(world):
    doc = _keypoints_doc()
    doc["categories"][0]["skeleton"] = [[1, 2], [2, 7]]
    response = Api(world, "alice").upload(world.course.pk, _zip(doc, 3), "bad", "keypoints")
    dataset = Dataset.objects.get(pk=response.json()["id"])
    from webapp.datasets import tasks
    from webapp.datasets.models import Upload

    tasks.ingest_upload(dataset.pk, str(Upload.objects.latest("created_at").pk), "en")
    dataset.refresh_from_db()
    assert dataset.status == "failed"
    assert "annotations/instances_train.json" in dataset.error and "person" in dataset.error
    assert "1-based" in dataset.error
