"""What a TA may do, as decided in `accounts.permissions` and shown on the class page (item 8).

A TA sees everything in the class and may stop any run (a runaway run in the lab), but does not
reorder the queue, reset passwords or manage people. A hidden test set's holder is shown to the
staff on its page and in the API, and to students in neither.
"""

import pytest
from django.test import Client

from tests.conftest import PERSONAS
from tests.unit.test_assignments import make_dataset, make_job
from webapp.accounts.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _api(world, persona: str, path: str, body: str | None = None):
    client = Client()
    if body is None:
        return client.get(path, **world.bearer(persona))
    return client.post(path, body, content_type="application/json", **world.bearer(persona))


# anon: 401 (sign in), outsiders and other students: 404 (not theirs to see)
CANCEL_BOBS_JOB = {
    "anon": 401,
    "alice": 404,
    "bob": 200,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_ta_may_cancel_any_students_run_in_the_class(world, persona):
    job = make_job(world, make_dataset(world), owner="bob", status="queued")
    response = _api(world, persona, f"/api/v1/jobs/{job.pk}/cancel", "{}")
    assert response.status_code == CANCEL_BOBS_JOB[persona]
    job.refresh_from_db()
    assert (job.status == "cancelled") == (CANCEL_BOBS_JOB[persona] == 200)


MOVE_BOBS_JOB = {**CANCEL_BOBS_JOB, "bob": 403, "ta": 403}


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_moves_runs_in_the_queue(world, persona):
    dataset = make_dataset(world)
    make_job(world, dataset, owner="alice", status="queued")
    job = make_job(world, dataset, owner="bob", status="queued")
    response = _api(world, persona, f"/api/v1/jobs/{job.pk}/move", '{"where": "top"}')
    assert response.status_code == MOVE_BOBS_JOB[persona]
    page = world.client(persona).post(f"/jobs/{job.pk}/move/", {"where": "top"})
    expected_page = {401: 302, 200: 302}.get(MOVE_BOBS_JOB[persona], MOVE_BOBS_JOB[persona])
    assert page.status_code == expected_page
    queue = world.client(persona).get(f"/courses/{world.course.pk}/queue/")
    if queue.status_code == 200:
        assert ('name="where"' in queue.content.decode()) == (persona == "teacher")


def test_a_ta_resets_no_password_on_the_page_or_in_the_api(world):
    alice = Membership.objects.get(course=world.course, user=world.alice)
    page = world.client("ta").post(
        f"/courses/{world.course.pk}/members/{alice.pk}/", {"action": "reset_password"}
    )
    api = _api(world, "ta", f"/api/v1/courses/{world.course.pk}/members/{alice.pk}/password", "{}")
    assert page.status_code == 403 and api.status_code == 403
    world.alice.refresh_from_db()
    assert world.alice.check_password("correct-horse-battery")
    roster = world.client("ta").get(f"/courses/{world.course.pk}/").content.decode()
    assert 'value="reset_password"' not in roster


# Who learns who holds the hidden test set (a TA made it): None = may not open it at all.
HIDDEN_OWNER_SHOWN = {
    "anon": None,
    "alice": False,
    "bob": False,
    "carol": None,
    "ta": True,
    "teacher": True,
    "other_teacher": None,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_hidden_test_sets_holder_is_shown_to_staff_on_the_page_and_in_the_api_alike(
    world, persona
):
    world.ta.display_name = "Tanaka TA"
    world.ta.save()
    hidden = make_dataset(world, owner="ta", visibility="hidden_test", name="secret")
    expected = HIDDEN_OWNER_SHOWN[persona]

    api = _api(world, persona, f"/api/v1/datasets/{hidden.pk}")
    detail = world.client(persona).get(f"/datasets/{hidden.pk}/")
    listing = world.client(persona).get(f"/courses/{world.course.pk}/datasets/")
    if expected is None:
        assert api.status_code in (401, 404) and detail.status_code in (302, 404)
        return
    assert api.status_code == detail.status_code == listing.status_code == 200
    assert (api.json()["owner"] == "ta") == expected
    assert api.json()["owner"] in ("ta", None)
    assert ("Tanaka TA" in detail.content.decode()) == expected
    assert ("Tanaka TA" in listing.content.decode()) == expected


def test_students_still_see_who_shared_a_dataset(world):
    shared = make_dataset(world, owner="bob", visibility="shared", name="bob's")
    api = _api(world, "alice", f"/api/v1/datasets/{shared.pk}")
    page = world.client("alice").get(f"/datasets/{shared.pk}/").content.decode()
    assert api.json()["owner"] == "bob" and 'id="dataset-owner">bob<' in page


@pytest.mark.parametrize("persona", ["alice", "ta", "teacher"])
def test_the_class_page_says_what_each_role_may_do_in_both_languages(world, persona):
    client = world.client(persona)
    english = client.get(f"/courses/{world.course.pk}/").content.decode()
    japanese = client.get(
        f"/courses/{world.course.pk}/", HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()
    assert "What each role may do" in english and "Move waiting runs in the queue" in english
    assert "役割ごとにできること" in japanese and "What each role may do" not in japanese
