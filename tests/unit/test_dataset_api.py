"""Datasets through the API and the pages: who sees and changes what, edits, export round trips.

Datasets are filled from the built-in samples by calling the Celery task functions directly (in
a pytest-django test, on_commit callbacks never run, so nothing goes to Redis).
"""

import io
import json
import re
import zipfile
from collections import Counter

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.conftest import PERSONAS, assert_api_error
from webapp.datasets import actions, dedup, queries, tasks
from webapp.datasets.models import Dataset, Item, Upload
from webapp.datasets.samples import SAMPLES

pytestmark = pytest.mark.django_db

VISIBILITIES = ["private", "shared", "handout", "hidden_test"]
# Who owns the dataset of each visibility in the matrix: students cannot hand out or hide.
OWNER = {"private": "alice", "shared": "alice", "handout": "teacher", "hidden_test": "teacher"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Stored images and upload chunks go to a folder of this test; ingest runs in-process
    (a pool would close the database connection that holds the test's transaction)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_PROCESSES = 1


# --- helpers ------------------------------------------------------------------------------


class Api:
    """A client that speaks for a persona with a bearer token (or nobody, for anon)."""

    def __init__(self, world, persona: str):
        self.client = Client()
        self.headers = world.bearer(persona)

    def get(self, path: str, **params):
        return self.client.get(path, params, **self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(
            path, json.dumps(body), content_type="application/json", **self.headers
        )

    def upload(self, course_id: int, data: bytes, name: str, kind: str, **fields):
        form = {
            "course": course_id,
            "name": name,
            "kind": kind,
            "file": SimpleUploadedFile("data.zip", data, content_type="application/zip"),
            **fields,
        }
        return self.client.post("/api/v1/datasets", form, **self.headers)


def content(response) -> bytes:
    """The whole body of a plain or streamed response (and close it)."""
    if response.streaming:
        # Iterating closes it: the test client keeps the database connection open meanwhile.
        return b"".join(response.streaming_content)
    return response.content


def from_sample(world, owner: str = "alice", key: str = "faces", visibility="private"):
    """A ready dataset copied from a built-in sample into `world.course`."""
    dataset = actions.copy_sample(world.user(owner), world.course, key, visibility=visibility)
    tasks.copy_sample(dataset.pk, key, "en")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset


def upload_and_ingest(world, persona: str, data: bytes, kind: str, **fields) -> Dataset:
    """POST a ZIP to the API as the persona, then run the ingest task the worker would run."""
    response = Api(world, persona).upload(world.course.pk, data, "round trip", kind, **fields)
    assert response.status_code == 202, response.content
    dataset_id = response.json()["id"]
    upload = Upload.objects.latest("created_at")
    tasks.ingest_upload(dataset_id, str(upload.pk), "en")
    dataset = Dataset.objects.get(pk=dataset_id)
    assert dataset.status == "ready", dataset.error
    return dataset


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def blocks(seed: int) -> np.ndarray:
    """A 64×64 grayscale picture of 8×8 random blocks: its difference hash is set by the blocks."""
    small = np.random.default_rng(seed).integers(0, 256, (8, 8))
    return np.kron(small, np.ones((8, 8), dtype=np.int64))  # (64, 64)


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def item_ids(dataset: Dataset, **filters) -> list[int]:
    return list(queries.items_at(dataset).filter(**filters).values_list("pk", flat=True))


def category_index(dataset: Dataset, name: str) -> int:
    return next(c.index for c in queries.categories_at(dataset) if c.name == name)


# --- 1. the permission matrix -------------------------------------------------------------

# visibility -> persona -> status of GET /api/v1/datasets/{id} (the summary).
SUMMARY = {
    "private": {
        "anon": 401,
        "alice": 200,
        "bob": 404,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "shared": {
        "anon": 401,
        "alice": 200,
        "bob": 200,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "handout": {
        "anon": 401,
        "alice": 200,
        "bob": 200,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "hidden_test": {  # students learn the size and the classes, nothing more
        "anon": 401,
        "alice": 200,
        "bob": 200,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
}
# visibility -> persona -> status of everything that shows images or labels.
IMAGES = {
    "private": {
        "anon": 401,
        "alice": 200,
        "bob": 404,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "shared": {
        "anon": 401,
        "alice": 200,
        "bob": 200,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "handout": {
        "anon": 401,
        "alice": 200,
        "bob": 200,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
    "hidden_test": {
        "anon": 401,
        "alice": 403,
        "bob": 403,
        "carol": 404,
        "ta": 200,
        "teacher": 200,
        "other_teacher": 404,
    },
}


def page_status(api_status: int) -> int:
    """Pages send the anonymous to sign in where the API answers 401."""
    return 302 if api_status == 401 else api_status


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_summary_and_page_matrix(world, persona, visibility):
    dataset = from_sample(world, OWNER[visibility], visibility=visibility)
    expected = SUMMARY[visibility][persona]
    response = Api(world, persona).get(f"/api/v1/datasets/{dataset.pk}")
    page = world.client(persona).get(f"/datasets/{dataset.pk}/")
    assert page.status_code == page_status(expected)
    if expected != 200:
        assert_api_error(response, expected)
        return
    body = response.json()
    assert body["num_images"] == 200
    assert {c["name"]: c["count"] for c in body["classes"]} == {"face": 100, "not_face": 100}
    html = page.content.decode()
    if IMAGES[visibility][persona] == 200:
        assert body["owner"] == OWNER[visibility]
        assert set(body["splits"]) == {"train", "val"}
        assert f"/datasets/{dataset.pk}/gallery/" in html
    else:  # a student on a hidden test set: the summary only
        assert body["owner"] is None
        assert body["rejected"] == [] and body["splits"] == {}
        assert "/items/" not in response.content.decode()
        assert f"/datasets/{dataset.pk}/items/" not in html
        assert f"/datasets/{dataset.pk}/gallery/" not in html
        assert "/export" not in html


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_images_and_labels_matrix(world, persona, visibility):
    dataset = from_sample(world, OWNER[visibility], visibility=visibility)
    item = queries.items_at(dataset).select_related("image").first()
    expected = IMAGES[visibility][persona]
    api = Api(world, persona)

    for path in ("items", "export", "versions"):
        response = api.get(f"/api/v1/datasets/{dataset.pk}/{path}")
        if expected != 200:
            assert_api_error(response, expected)
        else:
            assert response.status_code == 200, path
            content(response)

    client = world.client(persona)
    base = f"/datasets/{dataset.pk}"
    for path in (
        "gallery/",
        f"items/{item.pk}/",
        f"items/{item.pk}/image",
        f"items/{item.pk}/thumb",
    ):
        response = client.get(f"{base}/{path}")
        assert response.status_code == page_status(expected), path
        body = content(response)
        if path.endswith(("image", "thumb")):
            with default_storage.open(item.image.file, "rb") as stored:
                image_bytes = stored.read()
            # Nobody who may not see the images gets their bytes, whatever the status.
            assert (body == image_bytes) == (expected == 200), path
            if expected == 200:
                assert response["Content-Type"] == "image/png"
                assert response["X-Content-Type-Options"] == "nosniff"


def test_student_cannot_reach_a_private_item_through_a_shared_dataset(world):
    private = from_sample(world, "alice", visibility="private")
    shared = from_sample(world, "bob", key="keypoints", visibility="shared")
    secret = item_ids(private)[0]
    client = world.client("bob")
    for path in ("", "image", "thumb"):
        assert client.get(f"/datasets/{shared.pk}/items/{secret}/{path}").status_code == 404
        assert client.get(f"/datasets/{private.pk}/items/{secret}/{path}").status_code == 404


def test_class_list_shows_hidden_test_sets_to_students_as_summaries(world):
    hidden = from_sample(world, "teacher", visibility="hidden_test")
    private = from_sample(world, "alice", key="keypoints")
    listed = Api(world, "bob").get("/api/v1/datasets", course=world.course.pk).json()
    assert [d["id"] for d in listed] == [hidden.pk]  # alice's private dataset is not there
    assert listed[0]["num_images"] == 200 and listed[0]["splits"] == {}
    teacher_ids = {
        d["id"]
        for d in Api(world, "teacher").get("/api/v1/datasets", course=world.course.pk).json()
    }
    assert teacher_ids == {hidden.pk, private.pk}
    assert_api_error(Api(world, "carol").get("/api/v1/datasets", course=world.course.pk), 404)


def test_a_students_dataset_cannot_become_a_hidden_test_set(world):
    """Turning a student's dataset into a teachers-only one would lock its owner out."""
    dataset = from_sample(world, "alice")
    teacher = Api(world, "teacher")
    for visibility in ("hidden_test", "handout"):
        response = teacher.client.patch(
            f"/api/v1/datasets/{dataset.pk}",
            json.dumps({"visibility": visibility}),
            content_type="application/json",
            **teacher.headers,
        )
        assert "visibility" in assert_api_error(response, 400)["errors"]
    dataset.refresh_from_db()
    assert dataset.visibility == "private"
    assert Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/items").status_code == 200


# --- 2. who may create --------------------------------------------------------------------

# persona -> visibility -> status of POST /api/v1/datasets/samples into world.course.
CREATE = {
    "anon": dict.fromkeys(VISIBILITIES, 401),
    "alice": {"private": 202, "shared": 202, "handout": 403, "hidden_test": 403},
    "bob": {"private": 202, "shared": 202, "handout": 403, "hidden_test": 403},
    # Not a member: `_course` answers 404 naming the field (classes do not leak), first.
    "carol": dict.fromkeys(VISIBILITIES, 404),
    "ta": dict.fromkeys(VISIBILITIES, 202),
    "teacher": dict.fromkeys(VISIBILITIES, 202),
    "other_teacher": dict.fromkeys(VISIBILITIES, 404),
}


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_copy_a_sample(world, persona, visibility):
    response = Api(world, persona).post(
        "/api/v1/datasets/samples",
        {"course": world.course.pk, "sample": "faces", "visibility": visibility},
    )
    expected = CREATE[persona][visibility]
    created = Dataset.objects.filter(course=world.course)
    if expected != 202:
        body = assert_api_error(response, expected)
        if expected == 404:
            assert "course" in body["errors"]
        assert not created.exists()
        return
    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    dataset = created.get()
    assert (dataset.owner, dataset.visibility) == (world.user(persona), visibility)
    assert dataset.source == "sample:faces"


def test_unknown_sample_and_visibility_name_the_field(world):
    api = Api(world, "alice")
    body = assert_api_error(
        api.post("/api/v1/datasets/samples", {"course": world.course.pk, "sample": "cifar"}), 400
    )
    assert "sample" in body["errors"]
    body = assert_api_error(
        api.post(
            "/api/v1/datasets/samples",
            {"course": world.course.pk, "sample": "faces", "visibility": "public"},
        ),
        400,
    )
    assert "visibility" in body["errors"]
    assert not Dataset.objects.exists()


def test_archived_class_takes_no_new_datasets(world):
    world.course.archived_at = timezone.now()
    world.course.save()
    for persona in ("alice", "teacher"):
        api = Api(world, persona)
        sample = api.post(
            "/api/v1/datasets/samples", {"course": world.course.pk, "sample": "faces"}
        )
        assert_api_error(sample, 403)
        upload = api.upload(
            world.course.pk, zip_of({"a/1.png": png(blocks(1))}), "x", "classification"
        )
        assert_api_error(upload, 403)
    assert not Dataset.objects.exists() and not Upload.objects.exists()


def test_student_may_not_hand_out_by_changing_visibility(world):
    dataset = from_sample(world, "alice")
    api = Api(world, "alice")
    assert_api_error(
        api.client.patch(
            f"/api/v1/datasets/{dataset.pk}",
            json.dumps({"visibility": "handout"}),
            content_type="application/json",
            **api.headers,
        ),
        403,
    )
    dataset.refresh_from_db()
    assert dataset.visibility == "private"


# --- 3. edits -----------------------------------------------------------------------------


def edit(world, persona: str, dataset: Dataset, **body):
    return Api(world, persona).post(f"/api/v1/datasets/{dataset.pk}/edit", body)


def labels(world, dataset: Dataset, version=None) -> dict[str, str]:
    """{original path: label} over every page of the API's items."""
    api, found, page = Api(world, "teacher"), {}, 1
    params = {} if version is None else {"version": version}
    while True:
        body = api.get(f"/api/v1/datasets/{dataset.pk}/items", page=page, **params).json()
        found.update({row["path"]: row["label"] for row in body["items"]})
        if len(found) >= body["count"]:
            return found
        page += 1


def test_each_edit_is_a_new_version_and_old_versions_stay(world):
    dataset = from_sample(world, "alice")
    before = labels(world, dataset)
    faces = item_ids(dataset, category_index=category_index(dataset, "face"), split="train")
    paths = dict(Item.objects.filter(pk__in=faces[:2]).values_list("pk", "original_path"))

    response = edit(world, "alice", dataset, op="relabel", items=faces[:2], category="not_face")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    now = labels(world, dataset)
    assert {now[p] for p in paths.values()} == {"not_face"}
    assert labels(world, dataset, version=1) == before  # version 1 still has the old labels
    assert {p: label for p, label in now.items() if p not in paths.values()} == {
        p: label for p, label in before.items() if p not in paths.values()
    }

    train = item_ids(dataset, split="train")[:3]
    val_before = len(item_ids(dataset, split="val"))
    assert edit(world, "alice", dataset, op="move", items=train, split="val").json()["version"] == 3
    assert len(item_ids(dataset, split="val")) == val_before + 3

    gone = item_ids(dataset)[0]
    assert edit(world, "alice", dataset, op="delete", items=[gone]).json()["version"] == 4
    summary = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}").json()
    assert summary["num_images"] == 199
    old = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/items", version=3).json()
    assert old["count"] == 200

    face = category_index(dataset, "face")
    response = edit(world, "alice", dataset, op="rename_class", index=face, name="顔")
    assert response.json()["version"] == 5
    classes = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}").json()["classes"]
    assert {c["name"] for c in classes} == {"顔", "not_face"}

    source = category_index(dataset, "not_face")
    response = edit(world, "alice", dataset, op="merge_classes", source=source, target=face)
    assert response.json()["version"] == 6
    classes = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}").json()["classes"]
    assert classes == [{"name": "顔", "count": 199}]

    versions = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/versions").json()
    assert [v["number"] for v in versions] == [6, 5, 4, 3, 2, 1]
    dataset.refresh_from_db()  # items_at takes a version equal to `head` as the current one
    assert {c["name"]: c["count"] for c in queries.class_counts(dataset, 1)} == {
        "face": 100,
        "not_face": 100,
    }


def test_refused_edits_make_no_version(world):
    dataset = from_sample(world, "alice")
    cases = [
        ({"op": "relabel", "items": [], "category": "x"}, "items"),
        ({"op": "move", "items": item_ids(dataset)[:1], "split": "holdout"}, "split"),
        ({"op": "rename_class", "index": 99, "name": "x"}, "category"),
        ({"op": "merge_classes", "source": 0, "target": 0}, "target"),
        ({"op": "resplit", "val": 0.6, "test": 0.5}, "val"),
        ({"op": "resplit", "folds": 1}, "folds"),
        ({"op": "explode"}, "op"),
    ]
    for body, field in cases:
        refused = assert_api_error(edit(world, "alice", dataset, **body), 400)
        assert field in refused["errors"], body
    dataset.refresh_from_db()
    assert dataset.head == 1 and dataset.versions.count() == 1


def splits_of(dataset: Dataset) -> dict[str, tuple[str, int]]:
    return {
        path: (split, fold)
        for path, split, fold in queries.items_at(dataset).values_list(
            "original_path", "split", "fold"
        )
    }


def test_resplit_with_folds_is_stratified_and_seeded(world):
    dataset = from_sample(world, "alice")
    response = edit(world, "alice", dataset, op="resplit", val=0.2, test=0.1, seed=7, folds=5)
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["test"] == {"face": 10, "not_face": 10}
    assert response.json()["counts"]["val"] == {"face": 20, "not_face": 20}
    rows = queries.items_at(dataset).values_list("category_index", "split", "fold")
    per_class: dict[int, Counter] = {}
    for category, split, fold in rows:
        if split == "test":
            assert fold == -1
        else:
            assert 0 <= fold <= 4
            per_class.setdefault(category, Counter())[fold] += 1
    for folds in per_class.values():  # 90 images of each class over 5 folds: 18 each
        assert len(folds) == 5 and max(folds.values()) - min(folds.values()) <= 1

    first = splits_of(dataset)
    edit(world, "alice", dataset, op="resplit", val=0.2, test=0.1, seed=7, folds=5)
    assert splits_of(dataset) == first
    edit(world, "alice", dataset, op="resplit", val=0.2, test=0.1, seed=8, folds=5)
    assert splits_of(dataset) != first
    dataset.refresh_from_db()
    assert dataset.head == 4
    assert dataset.versions.get(number=4).split_settings == {
        "val": 0.2,
        "test": 0.1,
        "seed": 8,
        "folds": 5,
    }


# visibility -> persona -> status of an edit (owner as in OWNER).
EDIT = {
    "private": {
        "anon": 401,
        "alice": 200,
        "bob": 404,
        "carol": 404,
        "ta": 403,  # a TA sees a student's work but does not change it
        "teacher": 200,
        "other_teacher": 404,
    },
    "shared": {
        "anon": 401,
        "alice": 200,
        "bob": 403,
        "carol": 404,
        "ta": 403,
        "teacher": 200,
        "other_teacher": 404,
    },
    "hidden_test": {
        "anon": 401,
        "alice": 403,
        "bob": 403,
        "carol": 404,
        "ta": 403,  # the teacher's test set, not the TA's
        "teacher": 200,
        "other_teacher": 404,
    },
}


@pytest.mark.parametrize("visibility", list(EDIT))
@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_edit(world, persona, visibility):
    dataset = from_sample(world, OWNER[visibility], visibility=visibility)
    some = item_ids(dataset)[:2]
    response = edit(world, persona, dataset, op="move", items=some, split="test")
    expected = EDIT[visibility][persona]
    if expected == 200:
        assert response.status_code == 200
    else:
        assert_api_error(response, expected)
    page = world.client(persona).post(
        f"/datasets/{dataset.pk}/edit/", {"op": "delete", "items": item_ids(dataset)[-1:]}
    )
    assert page.status_code == (302 if expected == 200 else page_status(expected))
    dataset.refresh_from_db()
    assert dataset.head == (3 if expected == 200 else 1)


def test_ta_edits_own_hidden_test_set_only(world):
    own = from_sample(world, "ta", visibility="hidden_test")
    teachers = from_sample(world, "teacher", key="keypoints", visibility="hidden_test")
    assert edit(world, "ta", own, op="delete", items=item_ids(own)[:1]).status_code == 200
    assert_api_error(edit(world, "ta", teachers, op="delete", items=item_ids(teachers)[:1]), 403)
    # The teacher edits a TA's test set too: the class's teachers edit every dataset in it.
    assert edit(world, "teacher", own, op="delete", items=item_ids(own)[:1]).status_code == 200


def test_teacher_edits_a_students_dataset_through_the_page(world):
    dataset = from_sample(world, "alice")
    faces = item_ids(dataset, category_index=category_index(dataset, "face"))[:2]
    response = world.client("teacher").post(
        f"/datasets/{dataset.pk}/edit/",
        {"op": "relabel", "items": faces, "category": "not_face", "back": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{dataset.pk}/"  # never an outside address
    dataset.refresh_from_db()
    assert dataset.head == 2
    assert dataset.versions.get(number=2).created_by == world.teacher


# --- 4. export round trips ----------------------------------------------------------------


def numbers(value) -> tuple | None:
    """Nested lists of numbers as tuples of floats (an importer may read 2 back as 2.0)."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(numbers(v) for v in value)
    return float(value)


def annotation_rows(dataset: Dataset) -> list[tuple]:
    """Sorted (image sha256, split, label, category, bbox, polygons, keypoints) of the head.

    Polygons count for segmentation only: a detection dataset keeps boxes (the detection sample
    also stores its shapes' polygons, which a COCO detection import does not read back).
    """
    names = {c.index: c.name for c in queries.categories_at(dataset)}
    polygons = dataset.kind == "segmentation"
    rows = []
    items = queries.items_at(dataset).select_related("image").prefetch_related("annotations")
    for item in items:
        label = names.get(item.category_index) if item.category_index is not None else None
        found = [
            (
                names[a.category_index],
                numbers(a.bbox),
                numbers(a.segmentation) if polygons else None,
                numbers(a.keypoints),
            )
            for a in item.annotations.all()
        ] or [(None, None, None, None)]
        rows += [(item.image.sha256, item.split, label, *a) for a in found]
    return sorted(rows, key=repr)


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("faces", "imagefolder"),
        ("faces", "coco"),
        ("shapes_detection", "coco"),
        ("shapes_segmentation", "coco"),
        ("keypoints", "coco"),
    ],
)
def test_export_and_upload_again_gives_the_same_dataset(world, key, fmt):
    original = from_sample(world, "alice", key=key)
    response = Api(world, "alice").get(f"/api/v1/datasets/{original.pk}/export", format=fmt)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"-v1-{fmt}.zip" in response["Content-Disposition"]
    data = content(response)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None

    copy = upload_and_ingest(world, "alice", data, original.kind)
    api = Api(world, "alice")
    before = api.get(f"/api/v1/datasets/{original.pk}").json()
    after = api.get(f"/api/v1/datasets/{copy.pk}").json()
    assert after["num_images"] == before["num_images"] == SAMPLES[key].count
    assert after["rejected_total"] == 0
    assert sorted(map(repr, after["classes"])) == sorted(map(repr, before["classes"]))
    assert after["splits"] == before["splits"]
    assert annotation_rows(copy) == annotation_rows(original)
    if key == "keypoints":
        skeletons = [
            [(c.name, c.keypoints, c.skeleton) for c in queries.categories_at(d)]
            for d in (copy, original)
        ]
        assert skeletons[0] == skeletons[1]


def test_export_refusals(world):
    shapes = from_sample(world, "alice", key="shapes_detection")
    api = Api(world, "alice")
    body = assert_api_error(
        api.get(f"/api/v1/datasets/{shapes.pk}/export", format="imagefolder"), 400
    )
    assert "format" in body["errors"]
    assert_api_error(api.get(f"/api/v1/datasets/{shapes.pk}/export", format="voc"), 400)
    assert_api_error(api.get(f"/api/v1/datasets/{shapes.pk}/export", version=7), 404)


# --- 5. duplicates and leaks into the hidden test set ------------------------------------


def test_exact_and_near_duplicates_are_reported(world):
    original = blocks(1)
    nudged = original.copy()
    nudged[10, 10] += 3 if nudged[10, 10] < 250 else -3  # a few pixels changed: new file
    nudged[40, 41] += 2 if nudged[40, 41] < 250 else -2
    files = {
        "cat/one.png": png(blocks(2)),
        "cat/one-again.png": png(blocks(2)),  # the same bytes
        "cat/three.png": png(original),
        "dog/three-nudged.png": png(nudged),
        "dog/four.png": png(blocks(4)),
        "dog/five.png": png(blocks(5)),
    }
    dataset = upload_and_ingest(world, "alice", zip_of(files), "classification")
    ids = dict(queries.items_at(dataset).values_list("original_path", "pk"))
    found = dedup.duplicates_in(dataset)
    assert [sorted(group["ids"]) for group in found["exact"]] == [
        sorted([ids["cat/one.png"], ids["cat/one-again.png"]])
    ]
    assert found["exact_total"] == 1 and found["exact"][0]["count"] == 2
    near = {(a, b) for a, b, _bits in found["near"]}
    assert near == {tuple(sorted([ids["cat/three.png"], ids["dog/three-nudged.png"]]))}
    page = world.client("alice").get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="duplicates"' in page
    assert f"/datasets/{dataset.pk}/items/{ids['cat/one-again.png']}/thumb" in page


def test_leak_into_the_hidden_test_set_shows_pairs_to_staff_and_students_a_reminder(world):
    shared = png(blocks(11))
    test_set = upload_and_ingest(
        world,
        "teacher",
        zip_of({"a/x.png": shared, "a/y.png": png(blocks(12)), "b/z.png": png(blocks(13))}),
        "classification",
        visibility="hidden_test",
    )
    mine = upload_and_ingest(
        world,
        "alice",
        zip_of({"cat/1.png": shared, "cat/2.png": png(blocks(21)), "dog/3.png": png(blocks(22))}),
        "classification",
    )
    test_item = Item.objects.get(dataset=test_set, original_path="a/x.png")
    test_urls = f"/datasets/{test_set.pk}/items/"

    student_page = world.client("alice").get(f"/datasets/{mine.pk}/").content.decode()
    assert 'id="test-set-notice"' in student_page  # no count: see test_leak_notice.py
    assert "nearly identical" not in student_page
    assert test_urls not in student_page

    teacher_page = world.client("teacher").get(f"/datasets/{mine.pk}/").content.decode()
    assert "too similar to the test set" in teacher_page
    assert f"{test_urls}{test_item.pk}/thumb" in teacher_page

    assert dedup.leak_summary(world.alice, mine) is None
    mine_item = Item.objects.get(dataset=mine, original_path="cat/1.png")
    staff = dedup.leak_summary(world.ta, mine)
    assert staff["count"] == 1
    assert [(p["item"], p["test_item"]) for p in staff["pairs"]] == [(mine_item.pk, test_item.pk)]


# --- 6. gallery paging and filters --------------------------------------------------------


def test_gallery_filters_by_class_and_split_and_pages(world):
    dataset = from_sample(world, "alice")
    face = category_index(dataset, "face")
    client = world.client("alice")
    response = client.get(f"/datasets/{dataset.pk}/gallery/", {"class": face, "split": "val"})
    shown = [item.pk for item in response.context["page"]]
    assert sorted(shown) == sorted(item_ids(dataset, category_index=face, split="val"))
    assert len(shown) == 20
    links = set(
        map(int, re.findall(rf"/datasets/{dataset.pk}/items/(\d+)/\"", response.content.decode()))
    )
    assert links == set(shown)

    first = client.get(f"/datasets/{dataset.pk}/gallery/")
    second = client.get(f"/datasets/{dataset.pk}/gallery/", {"page": 2})
    one = [item.pk for item in first.context["page"]]
    two = [item.pk for item in second.context["page"]]
    assert (len(one), len(two)) == (120, 80)
    assert sorted(one + two) == sorted(item_ids(dataset))
    assert "Page 2 of 2" in second.content.decode()
    nothing = client.get(f"/datasets/{dataset.pk}/gallery/", {"class": "abc"})
    assert nothing.status_code == 200
    assert list(nothing.context["page"]) == []


def test_api_items_page_by_100_with_filters(world):
    dataset = from_sample(world, "alice", key="shapes_detection")
    api = Api(world, "alice")
    path = f"/api/v1/datasets/{dataset.pk}/items"
    pages = [api.get(path, page=n).json() for n in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [100, 100, 100, 0]
    assert {p["count"] for p in pages} == {300}
    assert len({row["id"] for p in pages for row in p["items"]}) == 300
    first = pages[0]["items"][0]
    assert first["image_url"] == f"/datasets/{dataset.pk}/items/{first['id']}/image"
    assert first["annotations"] and all(a["bbox"] for a in first["annotations"])

    circle = category_index(dataset, "circle")
    body = api.get(path, category=circle, split="val").json()
    expected = (
        queries.items_at(dataset)
        .filter(split="val", annotations__category_index=circle)
        .distinct()
        .count()
    )
    assert body["count"] == len(body["items"]) == expected > 0
    for row in body["items"]:
        assert row["split"] == "val"
        assert "circle" in {a["category"] for a in row["annotations"]}
    assert api.get(path, category="abc").json()["count"] == 0


# --- 7. the samples list ------------------------------------------------------------------


def test_samples_list_names_every_sample_in_both_languages(world):
    listed = Api(world, "alice").get("/api/v1/datasets/samples").json()
    assert [s["key"] for s in listed] == list(SAMPLES)
    for sample in listed:
        assert set(sample["title"]) == {"ja", "en"} and all(sample["title"].values())
        assert set(sample["description"]) == {"ja", "en"}
        assert sample["count"] == SAMPLES[sample["key"]].count
        assert sample["kind"] == SAMPLES[sample["key"]].kind
    assert_api_error(Api(world, "anon").get("/api/v1/datasets/samples"), 401)


def test_teachers_see_leaks_flagged_on_the_class_dataset_list(world):
    """The class's dataset list marks a student's dataset that overlaps a hidden test set."""
    test_set = from_sample(world, "teacher", visibility="hidden_test")
    students = from_sample(world, "alice", visibility="shared")
    teacher_page = world.client("teacher").get(f"/courses/{world.course.pk}/datasets/")
    student_page = world.client("bob").get(f"/courses/{world.course.pk}/datasets/")
    assert test_set.pk != students.pk
    assert "leak-flag" in teacher_page.content.decode()
    assert "leak-flag" not in student_page.content.decode()


# --- 8. kind, and `task` its deprecated old name ------------------------------------------


def _tiny_classification_zip() -> bytes:
    return zip_of(
        {
            f"{name}/{i}.png": png(blocks(seed=7 * i + len(name)))
            for name in ("cat", "dog")
            for i in range(2)
        }
    )


def test_dataset_answers_its_kind_and_never_task(world):
    dataset = from_sample(world, "alice", key="shapes_detection", visibility="shared")
    api = Api(world, "bob")
    summary = api.get(f"/api/v1/datasets/{dataset.pk}").json()
    assert summary["kind"] == "detection" and "task" not in summary
    listed = api.get("/api/v1/datasets", course=world.course.pk).json()
    assert [d["kind"] for d in listed if d["id"] == dataset.pk] == ["detection"]
    assert all("task" not in d for d in listed)
    assert all("task" not in s for s in api.get("/api/v1/datasets/samples").json())


def test_old_clients_sending_task_still_upload_in_one_request(world):
    api = Api(world, "alice")
    form = {
        "course": world.course.pk,
        "name": "old client",
        "task": "classification",  # what a client written before `kind` sends
        "file": SimpleUploadedFile("d.zip", _tiny_classification_zip()),
    }
    response = api.client.post("/api/v1/datasets", form, **api.headers)
    assert response.status_code == 202, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.kind == "classification"
    assert api.get(f"/api/v1/datasets/{dataset.pk}").json()["kind"] == "classification"


def _received_upload(api, world) -> str:
    data = _tiny_classification_zip()
    upload = api.post(
        "/api/v1/uploads", {"course": world.course.pk, "file_name": "d.zip", "size": len(data)}
    ).json()
    put = api.client.put(
        f"/api/v1/uploads/{upload['id']}?offset=0",
        data,
        content_type="application/octet-stream",
        **api.headers,
    )
    assert put.status_code == 200, put.content
    return upload["id"]


@pytest.mark.parametrize("field", ["kind", "task"])
def test_completing_an_upload_takes_kind_or_its_old_name_task(world, field):
    api = Api(world, "alice")
    upload_id = _received_upload(api, world)
    done = api.post(f"/api/v1/uploads/{upload_id}/complete", {"name": "x", field: "detection"})
    assert done.status_code == 202, done.content
    assert Dataset.objects.get(pk=done.json()["id"]).kind == "detection"


def test_kind_and_task_that_disagree_are_refused_naming_task(world):
    api = Api(world, "alice")
    upload_id = _received_upload(api, world)
    body = {"name": "x", "kind": "detection", "task": "classification"}
    refused = assert_api_error(api.post(f"/api/v1/uploads/{upload_id}/complete", body), 400)
    assert set(refused["errors"]) == {"task"}
    form = {
        "course": world.course.pk,
        "name": "both",
        "kind": "detection",
        "task": "segmentation",
        "file": SimpleUploadedFile("d.zip", _tiny_classification_zip()),
    }
    refused = assert_api_error(api.client.post("/api/v1/datasets", form, **api.headers), 400)
    assert set(refused["errors"]) == {"task"}
    same = {"name": "x", "kind": "detection", "task": "detection"}  # equal: no harm
    assert api.post(f"/api/v1/uploads/{upload_id}/complete", same).status_code == 202
    assert not Dataset.objects.filter(name="both").exists()


def test_a_request_without_kind_is_refused_naming_kind(world):
    api = Api(world, "alice")
    upload_id = _received_upload(api, world)
    refused = api.post(f"/api/v1/uploads/{upload_id}/complete", {"name": "x"})
    assert set(assert_api_error(refused, 400)["errors"]) == {"kind"}
    unknown = api.post(f"/api/v1/uploads/{upload_id}/complete", {"name": "x", "kind": "poetry"})
    assert set(assert_api_error(unknown, 400)["errors"]) == {"kind"}


def test_schema_documents_task_as_deprecated_alias_of_kind(world):
    schema = Client().get("/api/v1/openapi.json").json()
    complete = schema["components"]["schemas"]["CompleteIn"]["properties"]
    assert complete["task"]["deprecated"] is True and not complete["kind"].get("deprecated")
    out = schema["components"]["schemas"]["DatasetOut"]
    assert "kind" in out["required"] and "task" not in out["properties"]


# --- 9. detection datasets, uploaded in each format or copied from the sample ---------------


def _boxes(dataset: Dataset) -> dict[str, list[tuple[str, list[float]]]]:
    """{image path: [(class, [x, y, w, h]), ...]} of the current version, classes by name."""
    names = {c.index: c.name for c in queries.categories_at(dataset)}
    return {
        item.original_path: sorted(
            (names[a.category_index], a.bbox) for a in item.annotations.all()
        )
        for item in queries.items_at(dataset).prefetch_related("annotations")
    }


def _coco_zip() -> bytes:
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 10, 20, 15], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 9, "bbox": [1, 2, 10, 10], "iscrowd": 0},
        ],
        "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "犬"}],
    }
    return zip_of(
        {
            "annotations/instances_train.json": json.dumps(doc).encode(),
            "images/a.png": png(blocks(1)[:30, :40]),
            "images/b.png": png(blocks(2)[:30, :40]),
        }
    )


def _yolo_zip() -> bytes:
    return zip_of(
        {
            "data.yaml": b"names: [cat, dog]\n",
            "images/train/a.png": png(blocks(3)[:30, :40]),  # 40 wide, 30 high
            "labels/train/a.txt": b"1 0.5 0.5 0.5 0.5\n",  # centre, size: fractions of the image
            "images/train/b.png": png(blocks(4)[:30, :40]),
            "labels/train/b.txt": b"0 0.25 0.5 0.5 1.0\n",
        }
    )


def _voc_zip() -> bytes:
    def xml(name: str, cls: str) -> bytes:
        box = "<bndbox><xmin>11</xmin><ymin>6</ymin><xmax>30</xmax><ymax>20</ymax></bndbox>"
        return f"<annotation><filename>{name}</filename><object><name>{cls}</name>{box}</object></annotation>".encode()  # noqa: E501

    return zip_of(
        {
            "VOC/Annotations/a.xml": xml("a.jpg", "dog"),
            "VOC/Annotations/b.xml": xml("b.jpg", "cat"),
            "VOC/JPEGImages/a.jpg": png(blocks(5)[:30, :40]),
            "VOC/JPEGImages/b.jpg": png(blocks(6)[:30, :40]),
        }
    )


DETECTION_UPLOADS = {
    "coco": (
        _coco_zip,
        {"images/a.png": [("cat", [5, 10, 20, 15])], "images/b.png": [("犬", [1, 2, 10, 10])]},
    ),
    "yolo": (
        _yolo_zip,
        {
            "images/train/a.png": [("dog", [10, 7.5, 20, 15])],
            "images/train/b.png": [("cat", [0, 0, 20, 30])],
        },
    ),
    "voc": (  # VOC counts pixels from 1, corners inclusive: x 11..30 is x 10, width 20
        _voc_zip,
        {
            "VOC/JPEGImages/a.jpg": [("dog", [10, 5, 20, 15])],
            "VOC/JPEGImages/b.jpg": [("cat", [10, 5, 20, 15])],
        },
    ),
}


@pytest.mark.parametrize("fmt", list(DETECTION_UPLOADS))
def test_a_detection_zip_becomes_a_detection_dataset_with_its_boxes(world, fmt):
    build, expected = DETECTION_UPLOADS[fmt]
    dataset = upload_and_ingest(world, "alice", build(), "detection")
    assert dataset.kind == "detection" and dataset.report["format"] == fmt
    boxes = _boxes(dataset)
    assert boxes.keys() == expected.keys()
    for path, wanted in expected.items():
        assert [name for name, _ in boxes[path]] == [name for name, _ in wanted]
        for (_, got), (_, box) in zip(boxes[path], wanted, strict=True):
            assert got == pytest.approx(box)
    summary = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}").json()
    assert summary["kind"] == "detection" and summary["num_images"] == 2


def test_the_detection_sample_copies_as_a_detection_dataset_with_boxes(world):
    dataset = from_sample(world, "alice", key="shapes_detection")
    assert dataset.kind == "detection"
    items = list(queries.items_at(dataset).prefetch_related("annotations"))
    assert len(items) == SAMPLES["shapes_detection"].count
    assert all(item.category_index is None for item in items)  # no one label per image
    boxes = [a.bbox for item in items for a in item.annotations.all()]
    assert len(boxes) >= len(items) and all(len(b) == 4 and b[2] > 0 and b[3] > 0 for b in boxes)
    assert {c.name for c in queries.categories_at(dataset)} == {"circle", "square", "triangle"}


def _page(world, persona: str, url: str) -> str:
    response = world.client(persona).get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_detection_pages_draw_each_items_boxes_over_its_picture(world):
    dataset = from_sample(world, "alice", key="shapes_detection", visibility="shared")
    first = queries.items_at(dataset).order_by("id").first()
    boxes = first.annotations.count()
    gallery = _page(world, "bob", f"/datasets/{dataset.pk}/gallery/")
    tiles = re.findall(r'<svg class="tile-shapes" viewBox="0 0 64 64".*?</svg>', gallery, re.S)
    assert len(tiles) == min(SAMPLES["shapes_detection"].count, 120)  # one overlay a tile
    assert tiles[0].count("<rect ") == boxes >= 1
    assert f"{boxes} object" in gallery
    detail = _page(world, "bob", f"/datasets/{dataset.pk}/")
    preview = detail[detail.index('id="preview"') :]
    assert preview.count('class="tile-shapes"') == 8
    item = _page(world, "bob", f"/datasets/{dataset.pk}/items/{first.pk}/")
    assert item.count('class="shape box"') == boxes
    names = {c.name for c in queries.categories_at(dataset)}
    legend = item[item.index('id="object-legend"') :].split("</ul>")[0]
    assert any(name in legend for name in names)


def test_classification_pages_draw_no_overlays(world):
    dataset = from_sample(world, "alice", key="faces", visibility="shared")
    gallery = _page(world, "bob", f"/datasets/{dataset.pk}/gallery/")
    assert "tile-shapes" not in gallery and "object" not in gallery.split('id="gallery"')[1]
    assert 'id="preview"' not in _page(world, "bob", f"/datasets/{dataset.pk}/")


def test_a_thumbnail_draws_at_most_its_first_shapes(world, monkeypatch):
    from webapp.datasets import views

    monkeypatch.setattr(views, "TILE_SHAPES", 1)
    dataset = from_sample(world, "alice", key="shapes_detection", visibility="shared")
    gallery = _page(world, "bob", f"/datasets/{dataset.pk}/gallery/")
    tiles = re.findall(r'<svg class="tile-shapes".*?</svg>', gallery, re.S)
    assert {t.count("<rect ") for t in tiles} == {1}
    assert "3 objects" in gallery or "2 objects" in gallery  # the count is still all of them


@pytest.mark.parametrize("detection_trainable", [True, False])
def test_two_clicks_from_the_detection_sample_to_the_train_page(
    world, monkeypatch, detection_trainable
):
    """Copy the sample (click 1) and, once it is ready, Train (click 2) — when the trainer has a
    detection loop; until then the page says that training comes in a later lesson."""
    import trainer.kinds

    kinds = ("classification", "detection") if detection_trainable else ("classification",)
    monkeypatch.setattr(trainer.kinds, "trainable", lambda: kinds)
    client = world.client("alice")
    copied = client.post(
        f"/courses/{world.course.pk}/datasets/sample/", {"sample": "shapes_detection"}
    )
    dataset = Dataset.objects.get(owner=world.alice, source="sample:shapes_detection")
    assert copied.status_code == 302 and copied["Location"] == f"/datasets/{dataset.pk}/"
    tasks.copy_sample(dataset.pk, "shapes_detection", "en")  # what the worker runs
    page = _page(world, "alice", f"/datasets/{dataset.pk}/")
    train_link = f'href="/datasets/{dataset.pk}/train/"'
    if detection_trainable:
        assert train_link in page and 'id="train-later"' not in page
    else:
        assert train_link not in page
        assert "Training for this kind of dataset (Object detection) comes in a later" in page


def test_the_demo_class_hands_out_the_detection_sample(db, settings, tmp_path):
    from django.core.management import call_command

    from webapp.accounts.models import Course, User

    call_command("seed_demo")
    course = Course.objects.get(name="Demo class")
    handed_out = dict(course.datasets.values_list("source", "kind"))
    assert handed_out == {
        "sample:digits": "classification",
        "sample:shapes_detection": "detection",
        "sample:shapes_segmentation": "segmentation",
        "sample:keypoints": "keypoints",
    }
    assert set(course.datasets.values_list("visibility", flat=True)) == {"handout"}
    student = Client()
    student.force_login(User.objects.get(username="student"))
    page = student.get(f"/courses/{course.pk}/datasets/").content.decode()
    detection = course.datasets.get(kind="detection")
    assert f'href="/datasets/{detection.pk}/"' in page
    call_command("seed_demo")  # again: nothing more
    assert course.datasets.count() == 4
