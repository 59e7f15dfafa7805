"""The JSON API v1: the contract, the error shape, and the permission matrix."""

import json

import pytest
from django.test import Client

from tests.conftest import PASSWORD, PERSONAS, assert_api_error
from webapp.accounts.actions import issue_token
from webapp.accounts.models import ApiToken, Course, Membership

pytestmark = pytest.mark.django_db


def api(world, persona: str):
    """A client that speaks for the persona with a bearer token (or nobody, for anon)."""
    client = Client()
    headers = world.bearer(persona)

    def call(method: str, path: str, body=None):
        return getattr(client, method)(
            path,
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
            **headers,
        )

    return call


def test_token_for_good_credentials_and_401_for_bad(world):
    client = Client()
    response = client.post(
        "/api/v1/auth/token",
        {"username": "alice", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    stored = ApiToken.objects.get(user=world.alice)
    assert token not in (stored.key_hash, stored.prefix)  # stored hashed, not raw
    me = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.json()["username"] == "alice"

    bad = client.post(
        "/api/v1/auth/token",
        {"username": "alice", "password": "wrong"},
        content_type="application/json",
    )
    assert_api_error(bad, 401)


def test_revoked_token_stops_working(world):
    call = api(world, "alice")
    assert call("get", "/api/v1/me").status_code == 200
    assert call("delete", "/api/v1/auth/token").status_code == 204
    assert_api_error(call("get", "/api/v1/me"), 401)


def test_token_list_shows_only_own_tokens_and_never_the_value(world):
    raw, _ = issue_token(world.bob, "bob's laptop")
    call = api(world, "alice")
    listed = call("get", "/api/v1/auth/tokens").json()
    assert all(t["name"] != "bob's laptop" for t in listed)
    assert raw not in json.dumps(listed)
    bobs = ApiToken.objects.get(name="bob's laptop")
    assert_api_error(call("delete", f"/api/v1/auth/tokens/{bobs.pk}"), 404)


def test_token_endpoint_is_throttled_per_account(world, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    client = Client()
    for _ in range(3):
        client.post(
            "/api/v1/auth/token",
            {"username": "bob", "password": "guess"},
            content_type="application/json",
        )
    locked = client.post(
        "/api/v1/auth/token",
        {"username": "bob", "password": PASSWORD},
        content_type="application/json",
    )
    body = assert_api_error(locked, 429)
    assert "try again" in body["detail"]
    assert int(locked["Retry-After"]) > 0


def test_register_with_join_code(world):
    client = Client()
    response = client.post(
        "/api/v1/auth/register",
        {"username": "dave", "password": "a-long-passphrase", "join_code": world.course.join_code},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["username"] == "dave"
    assert Membership.objects.get(user__username="dave").course == world.course


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"username": "dave", "password": "a-long-passphrase", "join_code": "NOPE2345"},
            404,
            "join_code",
        ),
        ({"username": "alice", "password": "a-long-passphrase"}, 422, "join_code"),
        ({"username": "ALICE", "password": "a-long-passphrase"}, 409, "username"),
        ({"username": "dave", "password": "123"}, 400, "password"),
        ({"username": "bad name!", "password": "a-long-passphrase"}, 400, "username"),
    ],
)
def test_register_refusals_name_the_field(world, body, status, field):
    body.setdefault("join_code", world.course.join_code)
    if status == 422:
        body.pop("join_code")
    response = Client().post("/api/v1/auth/register", body, content_type="application/json")
    errors = assert_api_error(response, status)["errors"]
    assert field in errors


def test_malformed_json_is_a_400_not_a_500(world):
    response = Client().post("/api/v1/auth/token", "{not json", content_type="application/json")
    assert_api_error(response, 400)


def test_unknown_api_path_is_json_404(world):
    assert_api_error(Client().get("/api/v1/no-such-thing"), 404)


def test_openapi_schema_names_the_contract():
    schema = Client().get("/api/v1/openapi.json").json()
    for path in [
        "/api/v1/auth/token",
        "/api/v1/auth/register",
        "/api/v1/courses",
        "/api/v1/courses/join",
        "/api/v1/courses/{course_id}/members",
    ]:
        assert path in schema["paths"], path
    assert schema["info"]["version"] == "1"


# --- the permission matrix -------------------------------------------------------------

LIST_MEMBERS = {
    "anon": 401,
    "alice": 403,
    "bob": 403,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}
GET_COURSE = {
    "anon": 401,
    "alice": 200,
    "bob": 200,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}
MANAGE = {
    "anon": 401,
    "alice": 403,
    "bob": 403,
    "carol": 404,
    "ta": 403,
    "teacher": 200,
    "other_teacher": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_members_list_is_for_teachers_and_tas(world, persona):
    response = api(world, persona)("get", f"/api/v1/courses/{world.course.pk}/members")
    if LIST_MEMBERS[persona] == 200:
        assert response.status_code == 200
        assert {m["username"] for m in response.json()} == {"teacher", "ta", "alice", "bob"}
    else:
        assert_api_error(response, LIST_MEMBERS[persona])


@pytest.mark.parametrize("persona", PERSONAS)
def test_course_detail_only_for_members_and_join_code_only_for_staff(world, persona):
    response = api(world, persona)("get", f"/api/v1/courses/{world.course.pk}")
    if GET_COURSE[persona] != 200:
        assert_api_error(response, GET_COURSE[persona])
        return
    body = response.json()
    if persona in ("ta", "teacher"):
        assert body["join_code"] == world.course.join_code
    else:
        assert body["join_code"] is None


@pytest.mark.parametrize("persona", PERSONAS)
def test_course_list_shows_only_own_classes(world, persona):
    response = api(world, persona)("get", "/api/v1/courses")
    if persona == "anon":
        assert_api_error(response, 401)
        return
    names = {c["name"] for c in response.json()}
    in_course = persona in {"alice", "bob", "ta", "teacher"}
    assert names == ({"Deep learning 1"} if in_course else {"Other class"})


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_patch_the_class(world, persona):
    response = api(world, persona)(
        "patch",
        f"/api/v1/courses/{world.course.pk}",
        {"name": "Renamed", "storage_mb_per_student": 5},
    )
    if MANAGE[persona] == 200:
        assert response.status_code == 200
        assert response.json()["limits"]["storage_mb_per_student"] == 5
    else:
        assert_api_error(response, MANAGE[persona])
    world.course.refresh_from_db()
    assert (world.course.name == "Renamed") == (persona == "teacher")


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_regenerate_the_join_code(world, persona):
    old = world.course.join_code
    response = api(world, persona)("post", f"/api/v1/courses/{world.course.pk}/join-code")
    world.course.refresh_from_db()
    if MANAGE[persona] == 200:
        assert response.json()["join_code"] == world.course.join_code != old
    else:
        assert_api_error(response, MANAGE[persona])
        assert world.course.join_code == old


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_remove_members(world, persona):
    response = api(world, persona)(
        "delete", f"/api/v1/courses/{world.course.pk}/members/{world.bob.pk}"
    )
    removed = not Membership.objects.get(course=world.course, user=world.bob).is_active
    if MANAGE[persona] == 200:
        assert response.status_code == 204 and removed
    else:
        assert_api_error(response, MANAGE[persona])
        assert not removed


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_change_roles(world, persona):
    response = api(world, persona)(
        "patch", f"/api/v1/courses/{world.course.pk}/members/{world.alice.pk}", {"role": "ta"}
    )
    role = Membership.objects.get(course=world.course, user=world.alice).role
    if MANAGE[persona] == 200:
        assert response.status_code == 200 and role == "ta"
    else:
        assert_api_error(response, MANAGE[persona])
        assert role == "student"


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_reset_a_students_password(world, persona):
    response = api(world, persona)(
        "post", f"/api/v1/courses/{world.course.pk}/members/{world.alice.pk}/password"
    )
    if MANAGE[persona] == 200:
        new = response.json()["password"]
        world.alice.refresh_from_db()
        assert world.alice.check_password(new)
    else:
        assert_api_error(response, MANAGE[persona])
        world.alice.refresh_from_db()
        assert world.alice.check_password(PASSWORD)


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_teachers_create_classes(world, persona):
    response = api(world, persona)("post", "/api/v1/courses", {"name": "New class"})
    if persona in ("teacher", "other_teacher"):
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"id", "name", "join_code"}
    else:
        assert_api_error(response, 401 if persona == "anon" else 403)
        assert not Course.objects.filter(name="New class").exists()


def test_join_by_code_then_409_on_second_try(world):
    call = api(world, "carol")
    response = call("post", "/api/v1/courses/join", {"join_code": world.course.join_code.lower()})
    assert response.status_code == 200
    assert response.json()["role"] == "student"
    again = call("post", "/api/v1/courses/join", {"join_code": world.course.join_code})
    assert "join_code" in assert_api_error(again, 409)["errors"]


def test_closed_or_archived_class_cannot_be_joined(world):
    world.course.join_open = False
    world.course.save()
    response = api(world, "carol")(
        "post", "/api/v1/courses/join", {"join_code": world.course.join_code}
    )
    assert_api_error(response, 404)


def test_removing_the_last_teacher_is_refused(world):
    response = api(world, "teacher")(
        "delete", f"/api/v1/courses/{world.course.pk}/members/{world.teacher.pk}"
    )
    assert_api_error(response, 409)


def test_session_calls_need_csrf_but_bearer_calls_do_not(world):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.teacher)
    assert browser.get("/api/v1/courses").status_code == 200
    refused = browser.post("/api/v1/courses", {"name": "x"}, content_type="application/json")
    assert_api_error(refused, 403)
    browser.get("/accounts/settings/")  # sets the CSRF cookie, as a page load would
    csrf = browser.cookies["csrftoken"].value
    allowed = browser.post(
        "/api/v1/courses", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert allowed.status_code == 201


def test_oversized_body_is_413(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api(world, "teacher")("post", "/api/v1/courses", {"name": "x" * 500})
    assert_api_error(response, 413)


def test_api_docs_page_works_offline():
    page = Client().get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_unexpected_server_error_is_still_json(world, monkeypatch):
    from webapp.accounts import permissions

    def broken(user):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(permissions, "visible_courses", broken)
    body = assert_api_error(api(world, "alice")("get", "/api/v1/courses"), 500)
    assert "on fire" not in body["detail"]  # internals stay in the log
