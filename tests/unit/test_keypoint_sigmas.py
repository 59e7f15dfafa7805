"""A keypoint set's own OKS sigmas (COCO's categories[].sigmas): read by the COCO importer
(unusable ones are reported and left out, the rest of the file read), kept with the class,
changed through the keypoint-schema API, written back by the COCO export, sent to the trainer in
a run's spec and used by labelling agreement's OKS."""

import io
import json
import zipfile

import pytest

from tests.conftest import assert_api_error
from tests.unit.test_coco_roundtrip_masks_keypoints import (
    NAMES,
    SKELETON,
    _keypoints_doc,
    _rejected,
    _zip,
)
from tests.unit.test_dataset_api import Api, content, upload_and_ingest
from webapp.datasets import queries
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db

SIGMAS = [0.026, 0.079, 0.062, 0.062]  # one per NAMES: COCO's nose, shoulder, wrists


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_PROCESSES = 1


def _doc(sigmas) -> dict:
    doc = _keypoints_doc()
    doc["annotations"] = doc["annotations"][:2]  # the two good images
    doc["images"] = doc["images"][:2]
    if sigmas is not None:
        doc["categories"][0]["sigmas"] = sigmas
    return doc


def _person(dataset: Dataset):
    (category,) = queries.categories_at(dataset)
    return category


def _exported_category(world, dataset: Dataset) -> tuple[bytes, dict]:
    response = Api(world, "alice").get(f"/api/v1/datasets/{dataset.pk}/export", format="coco")
    assert response.status_code == 200
    data = content(response)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        doc = json.loads(archive.read("annotations/instances_train.json"))
    (category,) = doc["categories"]
    return data, category


def test_sigmas_go_round_trip_through_import_and_export(world):
    original = upload_and_ingest(world, "alice", _zip(_doc(SIGMAS), 2), "keypoints")
    assert _rejected(world, original) == {}
    assert _person(original).sigmas == SIGMAS

    data, category = _exported_category(world, original)
    assert category["keypoints"] == NAMES and category["skeleton"] == SKELETON
    assert category["sigmas"] == SIGMAS

    copy = upload_and_ingest(world, "alice", data, "keypoints")
    assert _person(copy).sigmas == SIGMAS


def test_a_set_without_sigmas_exports_none(world):
    dataset = upload_and_ingest(world, "alice", _zip(_doc(None), 2), "keypoints")
    assert _person(dataset).sigmas == []
    _, category = _exported_category(world, dataset)
    assert "sigmas" not in category


@pytest.mark.parametrize(
    "sigmas",
    [[0.05, 0.05], [0.05, 0.05, 0.05, 0], [0.05, 0.05, 0.05, "wide"], [0.05, 0.05, 0.05, 5]],
)
def test_unusable_sigmas_are_named_and_the_rest_of_the_file_is_read(world, sigmas):
    dataset = upload_and_ingest(world, "alice", _zip(_doc(sigmas), 2), "keypoints")
    rejected = _rejected(world, dataset)
    reason = rejected["annotations/instances_train.json"]
    assert "categories[0].sigmas" in reason and "person" in reason
    assert set(rejected) == {"annotations/instances_train.json"}  # both images read
    assert queries.items_at(dataset).count() == 2
    person = _person(dataset)
    assert person.keypoints == NAMES and person.sigmas == []


def test_a_runs_spec_carries_the_sets_sigmas(world):
    from trainer.spec import KeypointSchema
    from webapp.jobs import tasks
    from webapp.jobs.models import Job

    dataset = upload_and_ingest(world, "alice", _zip(_doc(SIGMAS), 2), "keypoints")
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"kind": "keypoints", "model": "pose_unet", "epochs": 1},
        status="queued",
    )
    schema = tasks.build_spec(job)["data"]["keypoints"]
    assert schema["names"] == NAMES and schema["sigmas"] == SIGMAS
    assert KeypointSchema(**schema).sigmas == SIGMAS  # what the trainer reads


def test_the_keypoint_api_sets_keeps_and_checks_sigmas(world):
    dataset = upload_and_ingest(world, "alice", _zip(_doc(SIGMAS), 2), "keypoints")
    url = f"/api/v1/datasets/{dataset.pk}/categories/0/keypoints"
    client = world.client("alice")

    renamed = ["skull", "neck", "left_hand", "right_hand"]  # the same points: sigmas kept
    answer = client.put(
        url,
        {"keypoints": renamed, "skeleton": SKELETON, "sources": [1, 2, 3, 4]},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["sigmas"] == SIGMAS
    assert _person(dataset).sigmas == SIGMAS

    given = [0.1, 0.2, 0.3, 0.4]
    answer = client.put(
        url,
        {"keypoints": renamed, "skeleton": SKELETON, "sigmas": given},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json()["sigmas"] == given
    assert _person(dataset).sigmas == given

    added = [*renamed, "tail"]  # a new point has no sigma: the defaults for all
    answer = client.put(url, {"keypoints": added, "skeleton": []}, content_type="application/json")
    assert answer.json()["sigmas"] == []

    for bad in ([0.1], [0.1, 0.1, 0.1, 0.1, -1], [0.1, 0.1, 0.1, 0.1, 2]):
        refused = client.put(
            url, {"keypoints": added, "sigmas": bad}, content_type="application/json"
        )
        assert assert_api_error(refused, 400)["errors"]["sigmas"]
    assert _person(dataset).keypoints == added  # nothing changed by the refusals


def test_labelling_agreement_uses_the_classes_sigmas(world):
    from webapp.labelling import agreement
    from webapp.labelling.queries import sigmas_by_category

    dataset = upload_and_ingest(world, "alice", _zip(_doc(SIGMAS), 2), "keypoints")
    assert sigmas_by_category(dataset) == {0: SIGMAS}
    plain = upload_and_ingest(world, "alice", _zip(_doc(None), 2), "keypoints")
    assert sigmas_by_category(plain) == {0: [0.05] * 4}

    first = {"category": 0, "bbox": [0, 0, 40, 40], "keypoints": [10, 10, 2] * 4}
    second = {"category": 0, "bbox": [0, 0, 40, 40], "keypoints": [13, 10, 2] * 4}
    tight = agreement.oks(first, second, [0.02] * 4)
    loose = agreement.oks(first, second, [0.2] * 4)
    assert 0 < tight < loose < 1  # a wider sigma forgives the same 3 pixels more
