"""Who may open and change each page: the permission matrix for the HTML side."""

import pytest

from tests.conftest import PERSONAS
from webapp.accounts.models import Course, Membership

pytestmark = pytest.mark.django_db

# persona -> status for GET pages of `course` (302 = sent to sign in).
COURSE_PAGE = {
    "anon": 302,
    "alice": 200,
    "bob": 200,
    "ta": 200,
    "teacher": 200,
    "carol": 404,
    "other_teacher": 404,
}
ROSTER_PAGE = {
    "anon": 302,
    "alice": 403,
    "bob": 403,
    "ta": 200,
    "teacher": 200,
    "carol": 404,
    "other_teacher": 404,
}
MANAGE = {
    "anon": 302,
    "alice": 403,
    "bob": 403,
    "ta": 403,
    "teacher": 302,
    "carol": 404,
    "other_teacher": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_course_page_is_for_members_only(world, persona):
    response = world.client(persona).get(f"/courses/{world.course.pk}/")
    assert response.status_code == COURSE_PAGE[persona]
    if persona == "anon":
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("persona", PERSONAS)
def test_roster_partial_is_for_teachers_and_tas(world, persona):
    response = world.client(persona).get(f"/courses/{world.course.pk}/roster/")
    assert response.status_code == ROSTER_PAGE[persona]
    if response.status_code == 200:
        assert b"alice" in response.content and b"bob" in response.content


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_rename_the_class(world, persona):
    response = world.client(persona).post(
        f"/courses/{world.course.pk}/settings/", {"action": "rename", "name": "Hacked"}
    )
    assert response.status_code == MANAGE[persona]
    world.course.refresh_from_db()
    assert (world.course.name == "Hacked") == (persona == "teacher")


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_remove_a_member(world, persona):
    bob = Membership.objects.get(course=world.course, user=world.bob)
    response = world.client(persona).post(
        f"/courses/{world.course.pk}/members/{bob.pk}/", {"action": "remove"}
    )
    assert response.status_code == MANAGE[persona]
    bob.refresh_from_db()
    assert bob.is_active == (persona != "teacher")


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_import_a_roster(world, persona, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("roster.csv", b"dave,Dave\n", content_type="text/csv")
    response = world.client(persona).post(
        f"/courses/{world.course.pk}/roster/import/", {"roster": upload}
    )
    expected = 200 if persona == "teacher" else MANAGE[persona]
    assert response.status_code == expected
    created = Membership.objects.filter(course=world.course, user__username="dave").exists()
    assert created == (persona == "teacher")


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_teacher_may_reset_a_students_password(world, persona):
    alice = Membership.objects.get(course=world.course, user=world.alice)
    response = world.client(persona).post(
        f"/courses/{world.course.pk}/members/{alice.pk}/", {"action": "reset_password"}
    )
    expected = 200 if persona == "teacher" else MANAGE[persona]
    assert response.status_code == expected
    world.alice.refresh_from_db()
    assert world.alice.check_password("correct-horse-battery") == (persona != "teacher")


def test_teacher_cannot_reset_the_password_of_a_ta(world):
    ta = Membership.objects.get(course=world.course, user=world.ta)
    response = world.client("teacher").post(
        f"/courses/{world.course.pk}/members/{ta.pk}/", {"action": "reset_password"}
    )
    assert response.status_code == 403


def test_student_view_hides_join_code_and_roster(world):
    page = world.client("alice").get(f"/courses/{world.course.pk}/").content.decode()
    assert world.course.join_code not in page
    assert "bob" not in page
    teacher_page = world.client("teacher").get(f"/courses/{world.course.pk}/").content.decode()
    assert world.course.join_code in teacher_page and "bob" in teacher_page


def test_ta_sees_roster_but_no_management_buttons(world):
    page = world.client("ta").get(f"/courses/{world.course.pk}/").content.decode()
    assert "bob" in page
    assert 'value="remove"' not in page and 'value="regenerate_code"' not in page


@pytest.mark.parametrize("persona", PERSONAS)
def test_my_classes_lists_only_own_classes(world, persona):
    response = world.client(persona).get("/courses/")
    if persona == "anon":
        assert response.status_code == 302
        return
    page = response.content.decode()
    in_course = persona in {"alice", "bob", "ta", "teacher"}
    assert ("Deep learning 1" in page) == in_course
    assert ("Other class" in page) == (not in_course)


def test_students_cannot_create_classes(world):
    response = world.client("alice").post("/courses/", {"action": "create", "create-name": "Mine"})
    assert response.status_code == 403
    assert not Course.objects.filter(name="Mine").exists()


def test_teacher_creates_a_class_and_becomes_its_teacher(world):
    response = world.client("other_teacher").post(
        "/courses/", {"action": "create", "create-name": "画像認識演習"}
    )
    course = Course.objects.get(name="画像認識演習")
    assert response["Location"] == f"/courses/{course.pk}/"
    assert Membership.objects.get(course=course, user=world.other_teacher).role == "teacher"


@pytest.mark.parametrize("persona", PERSONAS)
def test_account_page_needs_sign_in(world, persona):
    response = world.client(persona).get("/accounts/settings/")
    assert response.status_code == (302 if persona == "anon" else 200)


def test_nobody_can_revoke_someone_elses_token(world):
    from webapp.accounts.actions import issue_token

    _raw, token = issue_token(world.alice, "laptop")
    response = world.client("bob").post(f"/accounts/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.is_active
    world.client("alice").post(f"/accounts/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert not token.is_active


def test_unsafe_page_requests_need_the_csrf_token(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.teacher)
    response = client.post(f"/courses/{world.course.pk}/settings/", {"action": "archive"})
    assert response.status_code == 403
    world.course.refresh_from_db()
    assert not world.course.is_archived


def test_admin_is_for_site_staff_only(world):
    assert world.client("teacher").get("/admin/").status_code == 302
    world.teacher.is_staff = world.teacher.is_superuser = True
    world.teacher.save()
    assert world.client("teacher").get("/admin/").status_code == 200
