"""Model-assisted labelling: a run's answers become proposals, who may start a round with which
run, the round's bounds and its images, and accepting or rejecting proposals by score.

Datasets are made row by row and runs are rows with stand-in model files: the worker's side on
real trained runs is in tests/integration/test_model_assist.py.
"""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from pycocotools import mask as mask_utils

from tests.conftest import assert_api_error, ready_dataset
from webapp.datasets import drafts
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.predict import model_dir
from webapp.studio import assist, proposals
from webapp.studio.models import AssistRound

pytestmark = [pytest.mark.django_db]
URL = "/api/v1/datasets/{}/"
CLASSES = proposals.Classes(index={"cat": 0, "dog": 1}, keypoints={1: ["head", "hand", "foot"]})


# --- answers → proposals ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Stored images and runs' files go to this test's folder: a run's folder is named by its
    id, which another test's database gives out again."""
    settings.MEDIA_ROOT = tmp_path / "media"


def test_a_classifier_proposes_its_top_class_of_the_dataset_with_the_scores():
    answer = {
        "top": [
            {"class": "bird", "probability": 0.5},  # not a class of the dataset
            {"class": "dog", "probability": 0.3},
            {"class": "cat", "probability": 0.2},
        ]
    }
    [row] = proposals.classification(answer, "u1", CLASSES)
    assert row == {"item": "u1", "category": 1, "score": 0.3, "scores": {"1": 0.3, "0": 0.2}}
    assert (
        proposals.classification({"top": [{"class": "bird", "probability": 1}]}, "u", CLASSES) == []
    )


def test_a_detector_proposes_the_boxes_above_the_floor_surest_first():
    answer = {
        "boxes": [
            {"box": [1, 2, 3, 4], "score": 0.5, "label": 0, "class": "cat"},
            {"box": [5, 6, 7, 8], "score": 0.9, "label": 1, "class": "dog"},
            {"box": [1, 1, 2, 2], "score": proposals.DETECTION_FLOOR - 0.01, "class": "cat"},
            {"box": [1, 1, 2, 2], "score": 0.95, "label": 2, "class": "bird"},
            {"box": [1, 1, 0, 2], "score": 0.95, "label": 0, "class": "cat"},  # no area
        ],
        "width": 64,
        "height": 64,
    }
    rows = proposals.detection(answer, "u1", CLASSES)
    assert [(r["category"], r["bbox"], r["score"]) for r in rows] == [
        (1, [5.0, 6.0, 7.0, 8.0], 0.9),
        (0, [1.0, 2.0, 3.0, 4.0], 0.5),
    ]
    assert all(r["item"] == "u1" and r["segmentation"] is None for r in rows)


def test_a_segmenter_proposes_one_mask_per_class_at_the_images_size():
    small = np.zeros((4, 4), dtype=np.uint8)  # the model's 4×4 map: dog in the right half
    small[:, 2:] = 1
    counts = mask_utils.encode(np.asfortranarray(small))["counts"].decode("ascii")
    answer = {
        "width": 8,
        "height": 6,
        "size": [4, 4],
        "classes": [{"index": 2, "name": "dog", "share": 0.5, "score": 0.8}],
        "masks": {"2": counts},
    }
    [row] = proposals.segmentation(answer, "u1", CLASSES)
    assert row["category"] == 1 and row["score"] == 0.8
    rle = row["segmentation"]
    assert rle["size"] == [6, 8] and isinstance(rle["counts"], str)
    mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    expected = np.zeros((6, 8), dtype=np.uint8)
    expected[:, 4:] = 1  # the right half of the photo
    assert (mask == expected).all()
    assert row["bbox"] == [4.0, 0.0, 4.0, 6.0]


def test_a_pose_network_proposes_one_skeleton_per_person_in_the_datasets_order():
    answer = {
        "width": 64,
        "height": 64,
        "names": ["foot", "head", "tail"],
        "skeleton": [],
        "people": [
            {
                "score": 0.7,
                "box": [1, 2, 30, 40],
                "keypoints": [
                    {"name": "foot", "x": 10, "y": 40, "score": 0.9},
                    {"name": "head", "x": 12, "y": 3, "score": proposals.KEYPOINT_FLOOR / 2},
                    {"name": "tail", "x": 1, "y": 1, "score": 0.9},
                ],
            },
            {"score": 0.4, "box": [0, 0, 1, 1], "keypoints": []},  # nothing seen: left out
        ],
    }
    [row] = proposals.keypoints(answer, "u1", CLASSES)
    assert row["category"] == 1 and row["score"] == 0.7
    # head (too unsure: absent), hand (not in the run's set: absent), foot
    assert row["keypoints"] == [0.0, 0.0, 0, 0.0, 0.0, 0, 10.0, 40.0, 2]
    assert row["bbox"] == [1.0, 2.0, 30.0, 40.0]


# --- rows: datasets and runs ------------------------------------------------------------------


def dataset_of(world, kind="detection", owner="alice", images=4, course=None) -> Dataset:
    """A ready dataset at version 1 with classes cat and dog and `images` 100×80 images; the
    first one labelled (classification) or with a box (other kinds)."""
    return ready_dataset(course or world.course, world.user(owner), kind=kind, images=images)


def run_of(dataset, owner, status=JobStatus.SUCCEEDED, classes=("cat", "dog"), files=True) -> Job:
    """A run of the dataset with stand-in model files (a card naming `classes`)."""
    job = Job.objects.create(
        course=dataset.course, owner=owner, dataset=dataset, dataset_version=1,
        spec={"kind": dataset.kind, "model": "tiny"}, status=status,
    )  # fmt: skip
    if files:
        folder = model_dir(job.pk)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"stand-in")
        card = {"kind": dataset.kind, "classes": list(classes), "input": {"size": [8, 8]}}
        (folder / "model_card.json").write_text(json.dumps(card))
    return job


def start(world, persona, dataset, job, limit=2, **extra):
    return world.client(persona).post(
        URL.format(dataset.pk) + "assist",
        {"job": job.pk, "limit": limit, **extra},
        content_type="application/json",
    )


@pytest.fixture
def queued(monkeypatch):
    """Rounds that are queued and not run: the worker's side is tested on real runs."""
    sent = []
    monkeypatch.setattr("webapp.studio.tasks.assist.delay", lambda *args: sent.append(args))
    return sent


# --- who may start a round with which run ---------------------------------------------------


def test_a_student_starts_a_round_with_her_own_run_and_follows_it(
    world, queued, django_capture_on_commit_callbacks
):
    dataset = dataset_of(world)
    job = run_of(dataset, world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = start(world, "alice", dataset, job, limit=2)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["total"] == 2 and body["job"] == job.pk
    assert queued == [(body["id"], "en")]  # the worker got the round's id; nothing waited
    round_ = AssistRound.objects.get(pk=body["id"])
    items = list(dataset.items.order_by("id").values_list("uid", flat=True))
    # Unlabelled first: the first image has a box, so the round takes the next two.
    assert round_.items == [str(items[1]), str(items[2])]

    followed = world.client("alice").get(URL.format(dataset.pk) + f"assist/{round_.pk}")
    assert followed.status_code == 200 and followed.json()["done"] == 0
    # Another person's round is not theirs to follow, even for the dataset's teacher.
    assert (
        world.client("teacher").get(URL.format(dataset.pk) + f"assist/{round_.pk}").status_code
        == 404
    )

    # One round at a time per dataset and person...
    again = start(world, "alice", dataset, job)
    assert assert_api_error(again, 409)["errors"].keys() == {"job"}
    # ...unless the open one lost its worker long ago: it is marked failed, saying so.
    AssistRound.objects.filter(pk=round_.pk).update(
        created_at=timezone.now() - assist.STALE_AFTER - timedelta(seconds=1)
    )
    assert start(world, "alice", dataset, job).status_code == 202
    round_.refresh_from_db()
    assert round_.status == "failed" and "No worker" in round_.error


@pytest.mark.parametrize(
    ("owner", "course", "why"),
    [
        ("bob", "course", "not hers"),  # another student's run of the same class
        ("carol", "other_course", "another class"),  # carol's own class
        ("alice", "other_course", "another class"),  # her own run, but of another class
    ],
)
def test_a_run_that_is_not_hers_or_of_another_class_is_refused(world, queued, owner, course, why):
    dataset = dataset_of(world)
    if owner == "alice" and course == "other_course":
        from tests.conftest import add_member

        add_member(world.other_course, world.alice)
    elsewhere = dataset_of(world, owner=owner, course=getattr(world, course))
    job = run_of(elsewhere, world.user(owner))
    body = assert_api_error(start(world, "alice", dataset, job), 400)
    assert set(body["errors"]) == {"job"}, why
    assert not AssistRound.objects.exists()


def test_a_teacher_may_use_a_students_run_of_her_class(world, queued):
    dataset = dataset_of(world, owner="alice")
    job = run_of(dataset, world.bob)
    assert start(world, "teacher", dataset, job).status_code == 202
    assert start(world, "ta", dataset, job).status_code == 403  # a TA may not edit alice's data


def test_a_run_of_another_kind_unfinished_or_without_shared_classes_is_refused(world, queued):
    dataset = dataset_of(world, kind="detection")
    classifier = run_of(dataset_of(world, kind="classification"), world.alice)
    running = run_of(dataset, world.alice, status=JobStatus.RUNNING)
    gone = run_of(dataset, world.alice, files=False)
    strangers = run_of(dataset, world.alice, classes=("bird", "fish"))
    for job, words in [
        (classifier, "Classification"),
        (running, "no trained model"),
        (gone, "no trained model"),
        (strangers, "None of this run's classes"),
    ]:
        body = assert_api_error(start(world, "alice", dataset, job), 400)
        assert set(body["errors"]) == {"job"} and words in body["detail"], body


def test_who_may_not_annotate_the_dataset_cannot_start_a_round(world, queued):
    dataset = dataset_of(world)
    job = run_of(dataset, world.alice)
    assert_api_error(start(world, "bob", dataset, job), 404)  # alice's private dataset
    assert_api_error(start(world, "carol", dataset, job), 404)
    assert start(world, "anon", dataset, job).status_code == 401
    dataset.visibility = "shared"
    dataset.save()
    assert_api_error(start(world, "bob", dataset, job), 403)  # he sees it, may not edit it
    world.course.archived_at = timezone.now()
    world.course.save()
    assert "archived" in assert_api_error(start(world, "alice", dataset, job), 403)["detail"]


@pytest.mark.parametrize("limit", [0, 201, -3, "5", 2.5])
def test_the_number_of_images_is_bounded_and_named(world, queued, limit):
    dataset = dataset_of(world)
    job = run_of(dataset, world.alice)
    body = assert_api_error(start(world, "alice", dataset, job, limit=limit), 422)
    assert set(body["errors"]) == {"limit"}


def test_a_round_takes_no_image_that_already_waits_with_a_proposal(world, queued):
    dataset = dataset_of(world, kind="classification", images=3)
    job = run_of(dataset, world.alice)
    first, second, third = [
        str(u) for u in dataset.items.order_by("id").values_list("uid", flat=True)
    ]
    drafts.write_proposals(
        dataset, world.alice, job.pk, [{"item": second, "category": 1, "score": 0.6}]
    )
    response = start(world, "alice", dataset, job, limit=5)
    assert response.status_code == 202
    # the unlabelled third first, then the labelled first; the second has its proposal
    assert AssistRound.objects.get().items == [third, first]


def test_the_panel_lists_the_runs_she_may_use(world):
    dataset = dataset_of(world)
    mine = run_of(dataset, world.alice)
    run_of(dataset, world.bob)  # bob's
    run_of(dataset_of(world, kind="classification"), world.alice)  # another kind
    run_of(dataset, world.alice, status=JobStatus.FAILED)
    body = world.client("alice").get(URL.format(dataset.pk) + "assist").json()
    assert [run["id"] for run in body["runs"]] == [mine.pk]
    assert body["max_limit"] == 200 and body["rounds"] == []
    teacher = world.client("teacher").get(URL.format(dataset.pk) + "assist").json()
    assert len(teacher["runs"]) == 2


# --- accepting and rejecting proposals -------------------------------------------------------


def test_accepting_above_a_threshold_turns_exactly_those_into_annotations(world):
    dataset = dataset_of(world, images=3)
    job = run_of(dataset, world.alice)
    uid = str(dataset.items.order_by("id")[1].uid)
    drafts.write_proposals(
        dataset,
        world.alice,
        job.pk,
        [
            {"item": uid, "category": 0, "bbox": [1, 1, 10, 10], "score": 0.9},
            {"item": uid, "category": 1, "bbox": [20, 20, 10, 10], "score": 0.5},
            {"item": uid, "category": 1, "bbox": [40, 40, 10, 10], "score": 0.49},
        ],
    )
    client = world.client("alice")
    accepted = client.post(
        URL.format(dataset.pk) + "draft/accept", {"threshold": 0.5}, content_type="application/json"
    )
    assert accepted.status_code == 200, accepted.content
    assert accepted.json() == {"accepted": 2, "proposals": 1}
    view = drafts.item_view(dataset, world.alice, uid)
    shown = sorted((a["bbox"][0], a["proposal"] is None) for a in view["annotations"])
    assert shown == [(1.0, True), (20.0, True), (40.0, False)]

    rejected = client.post(
        URL.format(dataset.pk) + "draft/reject", {}, content_type="application/json"
    )
    assert rejected.json() == {"rejected": 1, "proposals": 0}
    view = drafts.item_view(dataset, world.alice, uid)
    assert sorted(a["bbox"][0] for a in view["annotations"]) == [1.0, 20.0]


def test_accepting_a_label_proposal_makes_it_the_images_label(world):
    dataset = dataset_of(world, kind="classification", images=2)
    job = run_of(dataset, world.alice)
    uid = str(dataset.items.order_by("id")[1].uid)
    drafts.write_proposals(
        dataset, world.alice, job.pk, [{"item": uid, "category": 1, "score": 0.7}]
    )
    assert drafts.item_view(dataset, world.alice, uid)["item"]["category"] is None
    client = world.client("alice")
    low = client.post(
        URL.format(dataset.pk) + "draft/accept", {"threshold": 0.8}, content_type="application/json"
    )
    assert low.json() == {"accepted": 0, "proposals": 1}
    client.post(
        URL.format(dataset.pk) + "draft/accept", {"threshold": 0.7}, content_type="application/json"
    )
    assert drafts.item_view(dataset, world.alice, uid)["item"]["category"] == 1


def test_accept_and_reject_are_bounded_and_permission_checked(world):
    dataset = dataset_of(world)
    for path, body in [("draft/accept", {"threshold": 1.5}), ("draft/reject", {"below": -1})]:
        response = world.client("alice").post(
            URL.format(dataset.pk) + path, body, content_type="application/json"
        )
        assert set(assert_api_error(response, 422)["errors"]) == {next(iter(body))}
    missing = world.client("alice").post(
        URL.format(dataset.pk) + "draft/accept", {}, content_type="application/json"
    )
    assert set(assert_api_error(missing, 422)["errors"]) == {"threshold"}
    for persona, status in [("bob", 404), ("carol", 404), ("anon", 401)]:
        response = world.client(persona).post(
            URL.format(dataset.pk) + "draft/accept",
            {"threshold": 0.5},
            content_type="application/json",
        )
        assert response.status_code == status, persona


def test_a_student_labelling_a_pool_gets_no_model_round_and_no_panel(world, queued):
    """Her own labels are what the assignment's agreement compares."""
    from webapp.labelling.models import LabellingAssignment, LabellingTask
    from webapp.studio.templatetags.studio_assist import assist_panel

    dataset = dataset_of(world, owner="teacher")
    first = dataset.items.order_by("id").first()
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Boxes", per_image=1
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=first.uid, student=world.bob)
    own = run_of(dataset, world.bob)
    refused = assert_api_error(start(world, "bob", dataset, own), 403)
    assert "agreement" in refused["detail"]
    assert not queued and not AssistRound.objects.exists()

    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = world.bob
    assert assist_panel({"request": request}, dataset) is None
    request.user = world.teacher
    assert assist_panel({"request": request}, dataset) is not None
