"""An archived class is read-only (issue 10, item 7).

Every write to its objects, from a page or the API, is refused with 403 and the reason, and
changes nothing; reads still work; cancelling a run still works (it stops GPU work); restoring the
class makes the very same requests succeed.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from tests.unit.test_assignments import add_images, make_assignment, make_dataset, make_job
from tests.unit.test_dataset_api import blocks, png, zip_of
from webapp.accounts import actions
from webapp.accounts.models import Course, Membership, User
from webapp.assignments.models import Assignment, Submission
from webapp.datasets.models import Dataset, Item, Upload, Version
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db
REASON = "This class is archived: it is read-only. A teacher can restore it."
REASON_JA = "このクラスはアーカイブされているため、閲覧のみできます。教員が元に戻せます。"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INGEST_PROCESSES = 1


@dataclass
class Scene:
    """A class with something of everything to change."""

    world: object
    handout: Dataset
    own: Dataset  # alice's private dataset
    first: Job  # alice's waiting job
    second: Job  # bob's waiting job, behind hers
    done: Job  # alice's finished run on the handout
    assignment: Assignment
    upload: Upload  # alice's upload, all bytes announced, none sent

    def item(self, dataset: Dataset) -> int:
        return Item.objects.filter(dataset=dataset, valid_to__isnull=True).first().pk


@pytest.fixture
def scene(world, settings) -> Scene:
    handout = make_dataset(world)
    add_images(handout, settings, [0, 1, 0, 1])
    own = make_dataset(world, owner="alice", visibility="private", name="mine")
    add_images(own, settings, [0, 1])
    for dataset in (handout, own):
        Version.objects.create(dataset=dataset, number=1, counts={})
    first = make_job(world, handout, owner="alice", status="queued")
    second = make_job(world, handout, owner="bob", status="queued")
    done = make_job(world, handout, owner="alice", status="succeeded")
    assignment = make_assignment(world, dataset=handout)
    upload = Upload.objects.create(
        owner=world.alice, course=world.course, file_name="later.zip", size=4
    )
    return Scene(world, handout, own, first, second, done, assignment, upload)


def snapshot() -> tuple:
    """Everything a write could change, as plain values."""
    return (
        list(Dataset.objects.order_by("pk").values_list("pk", "name", "visibility", "head")),
        Item.objects.filter(valid_to__isnull=True).count(),
        list(Upload.objects.order_by("pk").values_list("pk", "received", "completed_at")),
        list(Job.objects.order_by("pk").values_list("pk", "status", "priority")),
        list(Assignment.objects.order_by("pk").values_list("pk", "title")),
        Submission.objects.count(),
        list(Course.objects.order_by("pk").values_list("pk", "name", "join_code", "join_open")),
        list(Membership.objects.order_by("pk").values_list("pk", "role", "removed_at", "course")),
        User.objects.count(),
    )


def _api(world, persona: str, method: str, path: str, body=None, **extra):
    client = Client()
    headers = world.bearer(persona)
    if isinstance(body, bytes):
        return getattr(client, method)(
            path, body, content_type="application/octet-stream", **headers, **extra
        )
    if method == "post" and isinstance(body, dict) and "file" in body:
        return client.post(path, body, **headers)  # multipart
    data = json.dumps(body) if body is not None else None
    kwargs = {"content_type": "application/json"} if data is not None else {}
    return getattr(client, method)(path, data, **kwargs, **headers)


def _page(world, persona: str, path: str, form: dict):
    return world.client(persona).post(path, form)


def _roster_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("roster.csv", b"newbie,New\n", content_type="text/csv")


def _zip_file() -> SimpleUploadedFile:
    data = zip_of({"a/1.png": png(blocks(1)), "b/2.png": png(blocks(2))})
    return SimpleUploadedFile("data.zip", data, content_type="application/zip")


def _assignment_form(s: Scene) -> dict:
    hidden = s.assignment.hidden_test
    deadline = (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    return {
        "title": "Another",
        "description": "Go.",
        "dataset": s.handout.pk,
        "dataset_version": "",
        "hidden_test": hidden.pk,
        "metric": "accuracy",
        "deadline": deadline,
        "daily_limit": 2,
    }


def _member(s: Scene, persona: str) -> Membership:
    return Membership.objects.get(course=s.world.course, user=s.world.user(persona))


SPEC = {"model": "logistic", "epochs": 1, "input_size": 8}

# name -> (request, status when the class is writable). Each writes when the class is not archived.
WRITES = {
    # datasets, pages
    "page: move images to validation": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/datasets/{s.handout.pk}/edit/",
            {"op": "move", "items": [s.item(s.handout)], "split": "val"},
        ),
        302,
    ),
    "page: student deletes an image of her dataset": (
        lambda s: _page(
            s.world,
            "alice",
            f"/datasets/{s.own.pk}/edit/",
            {"op": "delete", "items": [s.item(s.own)]},
        ),
        302,
    ),
    "page: copy a sample": (
        lambda s: _page(
            s.world, "alice", f"/courses/{s.world.course.pk}/datasets/sample/", {"sample": "faces"}
        ),
        302,
    ),
    # datasets, API
    "api: copy a sample": (
        lambda s: _api(
            s.world,
            "alice",
            "post",
            "/api/v1/datasets/samples",
            {"course": s.world.course.pk, "sample": "faces"},
        ),
        202,
    ),
    "api: upload a ZIP": (
        lambda s: _api(
            s.world,
            "alice",
            "post",
            "/api/v1/datasets",
            {
                "course": s.world.course.pk,
                "name": "zip",
                "kind": "classification",
                "file": _zip_file(),
            },
        ),
        202,
    ),
    "api: start an upload": (
        lambda s: _api(
            s.world,
            "alice",
            "post",
            "/api/v1/uploads",
            {"course": s.world.course.pk, "file_name": "x.zip", "size": 10},
        ),
        201,
    ),
    "api: send a chunk": (
        lambda s: _api(s.world, "alice", "put", f"/api/v1/uploads/{s.upload.pk}?offset=0", b"abcd"),
        200,
    ),
    "api: rename a dataset": (
        lambda s: _api(
            s.world, "teacher", "patch", f"/api/v1/datasets/{s.handout.pk}", {"name": "renamed"}
        ),
        200,
    ),
    "api: change a dataset's visibility": (
        lambda s: _api(
            s.world, "alice", "patch", f"/api/v1/datasets/{s.own.pk}", {"visibility": "shared"}
        ),
        200,
    ),
    "api: relabel images": (
        lambda s: _api(
            s.world,
            "teacher",
            "post",
            f"/api/v1/datasets/{s.handout.pk}/edit",
            {"op": "relabel", "items": [s.item(s.handout)], "category": "dog"},
        ),
        200,
    ),
    # jobs
    "api: submit a job": (
        lambda s: _api(
            s.world, "alice", "post", "/api/v1/jobs", {"dataset": s.handout.pk, "spec": SPEC}
        ),
        201,
    ),
    "api: move a waiting job": (
        lambda s: _api(
            s.world, "teacher", "post", f"/api/v1/jobs/{s.second.pk}/move", {"where": "top"}
        ),
        200,
    ),
    "page: move a waiting job": (
        lambda s: _page(s.world, "teacher", f"/jobs/{s.second.pk}/move/", {"where": "top"}),
        302,
    ),
    # assignments
    "page: create an assignment": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/assignments/new/",
            _assignment_form(s),
        ),
        302,
    ),
    "page: hand in a run": (
        lambda s: _page(
            s.world, "alice", f"/assignments/{s.assignment.pk}/submit/", {"job": s.done.pk}
        ),
        302,
    ),
    "api: hand in a run": (
        lambda s: _api(
            s.world,
            "alice",
            "post",
            f"/api/v1/assignments/{s.assignment.pk}/submissions",
            {"job": s.done.pk},
        ),
        201,
    ),
    # people and settings
    "page: import a roster": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/roster/import/",
            {"roster": _roster_file()},
        ),
        200,
    ),
    "page: rename the class": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/settings/",
            {"action": "rename", "name": "Renamed"},
        ),
        302,
    ),
    "page: new join code": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/settings/",
            {"action": "regenerate_code"},
        ),
        302,
    ),
    "page: change a role": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/members/{_member(s, 'bob').pk}/",
            {"action": "role", "role": "ta"},
        ),
        302,
    ),
    "page: remove a member": (
        lambda s: _page(
            s.world,
            "teacher",
            f"/courses/{s.world.course.pk}/members/{_member(s, 'bob').pk}/",
            {"action": "remove"},
        ),
        302,
    ),
    "api: rename the class": (
        lambda s: _api(
            s.world,
            "teacher",
            "patch",
            f"/api/v1/courses/{s.world.course.pk}",
            {"name": "Renamed"},
        ),
        200,
    ),
    "api: close joining": (
        lambda s: _api(
            s.world,
            "teacher",
            "patch",
            f"/api/v1/courses/{s.world.course.pk}",
            {"join_open": False},
        ),
        200,
    ),
    "api: new join code": (
        lambda s: _api(
            s.world, "teacher", "post", f"/api/v1/courses/{s.world.course.pk}/join-code"
        ),
        200,
    ),
    "api: change a role": (
        lambda s: _api(
            s.world,
            "teacher",
            "patch",
            f"/api/v1/courses/{s.world.course.pk}/members/{s.world.bob.pk}",
            {"role": "ta"},
        ),
        200,
    ),
    "api: remove a member": (
        lambda s: _api(
            s.world,
            "teacher",
            "delete",
            f"/api/v1/courses/{s.world.course.pk}/members/{s.world.bob.pk}",
        ),
        204,
    ),
    "api: join with the code": (
        lambda s: _api(
            s.world,
            "carol",
            "post",
            "/api/v1/courses/join",
            {"join_code": s.world.course.join_code},
        ),
        200,
    ),
    "api: register with the code": (
        lambda s: Client().post(
            "/api/v1/auth/register",
            json.dumps(
                {
                    "username": "newcomer",
                    "password": "a-long-passphrase",
                    "join_code": s.world.course.join_code,
                }
            ),
            content_type="application/json",
        ),
        201,
    ),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_to_an_archived_class_is_refused_with_the_reason_until_restored(scene, name):
    request, status = WRITES[name]
    actions.set_archived(scene.world.course, True)
    before = snapshot()

    response = request(scene)

    assert response.status_code == 403, response.content[:300]
    if response["Content-Type"].startswith("application/json"):
        assert response.json() == {"detail": REASON, "errors": {}}
    else:
        assert REASON in response.content.decode()
    assert snapshot() == before

    actions.set_archived(scene.world.course, False)
    scene.world.course.refresh_from_db()
    response = request(scene)
    assert response.status_code == status, response.content[:300]
    assert snapshot() != before


def test_the_reason_reads_in_japanese(scene):
    actions.set_archived(scene.world.course, True)
    response = scene.world.client("alice").post(
        f"/datasets/{scene.own.pk}/edit/",
        {"op": "delete", "items": [scene.item(scene.own)]},
        HTTP_ACCEPT_LANGUAGE="ja",
    )
    assert response.status_code == 403 and REASON_JA in response.content.decode()
    api = Client().post(
        "/api/v1/datasets/samples",
        json.dumps({"course": scene.world.course.pk, "sample": "faces"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="ja",
        **scene.world.bearer("alice"),
    )
    assert api.status_code == 403 and api.json()["detail"] == REASON_JA


READS = {
    "teacher": [
        "/courses/{course}/",
        "/courses/{course}/datasets/",
        "/datasets/{handout}/",
        "/datasets/{handout}/gallery/",
        "/jobs/{first}/",
        "/courses/{course}/queue/",
        "/courses/{course}/assignments/",
        "/assignments/{assignment}/",
        "/courses/{course}/dashboard/",
        "/api/v1/courses/{course}",
        "/api/v1/courses/{course}/members",
        "/api/v1/datasets/{handout}",
        "/api/v1/datasets/{handout}/items",
        "/api/v1/jobs/{first}",
        "/api/v1/assignments/{assignment}/leaderboard",
    ],
    "alice": [
        "/courses/{course}/",
        "/datasets/{own}/",
        "/datasets/{own}/gallery/",
        "/jobs/{first}/",
        "/assignments/{assignment}/",
        "/api/v1/datasets/{own}",
        "/api/v1/jobs/{first}",
    ],
}


@pytest.mark.parametrize("persona", list(READS))
def test_an_archived_class_can_still_be_read(scene, persona):
    actions.set_archived(scene.world.course, True)
    ids = {
        "course": scene.world.course.pk,
        "handout": scene.handout.pk,
        "own": scene.own.pk,
        "first": scene.first.pk,
        "assignment": scene.assignment.pk,
    }
    page_client = scene.world.client(persona)
    headers = scene.world.bearer(persona)
    for url in READS[persona]:
        path = url.format(**ids)
        client_kwargs = headers if path.startswith("/api/") else {}
        client = Client() if path.startswith("/api/") else page_client
        response = client.get(path, **client_kwargs)
        assert response.status_code == 200, path
        if not path.startswith("/api/"):
            assert REASON in response.content.decode(), path  # the notice, on every class page


def test_the_pages_of_an_archived_class_offer_no_writes_but_restore(scene):
    actions.set_archived(scene.world.course, True)
    teacher = scene.world.client("teacher")
    course = teacher.get(f"/courses/{scene.world.course.pk}/").content.decode()
    assert 'value="restore"' in course
    for write in ('value="remove"', 'value="regenerate_code"', "roster/import", 'value="rename"'):
        assert write not in course
    dataset = teacher.get(f"/datasets/{scene.handout.pk}/").content.decode()
    assert f"/datasets/{scene.handout.pk}/edit/" not in dataset
    assert f"/datasets/{scene.handout.pk}/train/" not in dataset
    listing = teacher.get(f"/courses/{scene.world.course.pk}/assignments/").content.decode()
    assert f"/courses/{scene.world.course.pk}/assignments/new/" not in listing
    alice = scene.world.client("alice")
    detail = alice.get(f"/assignments/{scene.assignment.pk}/").content.decode()
    assert f"/assignments/{scene.assignment.pk}/submit/" not in detail


def test_a_running_job_of_an_archived_class_can_still_be_cancelled(scene):
    actions.set_archived(scene.world.course, True)
    response = _api(scene.world, "alice", "post", f"/api/v1/jobs/{scene.first.pk}/cancel")
    assert response.status_code == 200
    scene.first.refresh_from_db()
    assert scene.first.status == "cancelled"


def test_joining_an_archived_class_on_the_page_says_why(scene):
    actions.set_archived(scene.world.course, True)
    page = scene.world.client("carol").post(
        "/courses/", {"action": "join", "join-join_code": scene.world.course.join_code}
    )
    assert page.status_code == 200 and REASON in page.content.decode()
    assert not Membership.objects.filter(course=scene.world.course, user=scene.world.carol).exists()
