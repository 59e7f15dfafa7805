"""Classes and people: joining, removal that keeps work, roster files, sign-in throttling."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from tests.conftest import PASSWORD, add_member, make_user
from webapp.accounts import actions
from webapp.accounts.models import Course, Membership, User

pytestmark = pytest.mark.django_db


def test_join_code_is_forgiving_about_case_spaces_and_dashes(world):
    code = world.course.join_code
    messy = f" {code[:4].lower()}-{code[4:]} "
    membership = actions.join_course(world.carol, messy)
    assert membership.course == world.course and membership.role == "student"


@pytest.mark.parametrize("code", ["\x00DBI\x80", "AB\udba6CD", "ABC\x1aD"])
def test_a_join_code_with_control_characters_is_no_code_not_a_server_error(world, code):
    # PostgreSQL refuses a NUL in text: the API fuzzer found a 500 there before this check.
    with pytest.raises(actions.JoinCodeInvalid):
        actions.join_course(world.carol, code)
    response = world.client("carol").post(
        "/api/v1/courses/join", {"join_code": code}, content_type="application/json"
    )
    assert response.status_code in (400, 404, 422), response.content  # documented answers


def test_regenerated_join_code_closes_the_old_one(world):
    old = world.course.join_code
    new = actions.regenerate_join_code(world.course)
    assert new != old
    with pytest.raises(actions.JoinCodeInvalid):
        actions.join_course(world.carol, old)
    actions.join_course(world.carol, new)


def test_archived_class_refuses_new_members(world):
    from webapp.accounts.permissions import CourseArchived

    actions.set_archived(world.course, True)
    with pytest.raises(CourseArchived):
        actions.join_course(world.carol, world.course.join_code)


def test_removed_member_keeps_the_row_and_can_rejoin_as_student(world):
    membership = Membership.objects.get(course=world.course, user=world.ta)
    actions.remove_member(world.course, membership)
    membership.refresh_from_db()
    assert membership.removed_at is not None  # the row (and so their work) stays
    assert world.course not in Course.objects.filter(
        memberships__user=world.ta, memberships__removed_at__isnull=True
    )
    rejoined = actions.join_course(world.ta, world.course.join_code)
    assert rejoined.pk == membership.pk and rejoined.role == "student" and rejoined.is_active


def test_class_always_keeps_a_teacher(world):
    own = Membership.objects.get(course=world.course, user=world.teacher)
    with pytest.raises(actions.LastTeacher):
        actions.change_role(world.course, own, "student")
    ta = Membership.objects.get(course=world.course, user=world.ta)
    actions.change_role(world.course, ta, "teacher")
    actions.change_role(world.course, own, "ta")  # now allowed: the TA became a teacher


def test_roster_file_keeps_good_rows_and_explains_bad_ones(world):
    csv_text = (
        "username,display_name,password\n"
        "dave,Dave D,\n"
        "erin,エリン,a-chosen-passphrase\n"
        "alice,,ignored-password\n"
        "carol\n"
        "bad name!,Bad\n"
        "dave,Dave again\n"
        "frank,Frank,123\n"
    )
    with translation.override("en"):
        result = actions.bulk_create_students(world.course, csv_text)
    rows = {(r.line, r.username): r for r in result}
    assert rows[(2, "dave")].status == "created" and len(rows[(2, "dave")].password) >= 12
    assert User.objects.get(username="dave").check_password(rows[(2, "dave")].password)
    assert User.objects.get(username="erin").check_password("a-chosen-passphrase")
    assert rows[(4, "alice")].status == "already"
    assert world.alice.check_password(PASSWORD)  # a file never changes an existing password
    assert rows[(5, "carol")].error and rows[(5, "carol")].status == ""  # another class's
    assert rows[(6, "bad name!")].error and rows[(6, "bad name!")].status == ""
    assert "twice" in rows[(7, "dave")].error
    assert rows[(8, "frank")].error and not User.objects.filter(username="frank").exists()
    members = set(
        Membership.objects.active()
        .filter(course=world.course)
        .values_list("user__username", flat=True)
    )
    assert {"dave", "erin"} <= members and "carol" not in members


def test_roster_upload_accepts_shift_jis_from_japanese_excel(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = "ユーザー名,表示名\nhanako,山田花子\n".encode("cp932")
    client = world.client("teacher")
    response = client.post(
        f"/courses/{world.course.pk}/roster/import/",
        {"roster": SimpleUploadedFile("名簿.csv", data, content_type="text/csv")},
    )
    assert response.status_code == 200
    assert User.objects.get(username="hanako").display_name == "山田花子"


def test_roster_upload_refuses_binary_with_the_file_name(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = world.client("teacher")
    response = client.post(
        f"/courses/{world.course.pk}/roster/import/",
        {"roster": SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x81")},
        follow=True,
    )
    assert "photo.png" in response.content.decode()


def test_password_reset_revokes_tokens(world):
    raw, token = actions.issue_token(world.alice)
    password = actions.reset_password(world.alice)
    world.alice.refresh_from_db()
    assert world.alice.check_password(password)
    token.refresh_from_db()
    assert not token.is_active
    assert actions.user_for_token(raw) is None


def _login(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_login_is_throttled_per_account_with_a_clear_message(world, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    for i in range(3):
        _login(Client(), "alice", "guess", REMOTE_ADDR=f"10.0.0.{i}")
    locked = _login(Client(), "alice", PASSWORD, REMOTE_ADDR="10.0.0.9", HTTP_ACCEPT_LANGUAGE="en")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert _login(Client(), "bob", PASSWORD).status_code == 302  # others are not affected


def test_login_is_throttled_per_address(world, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    for name in ["alice", "bob", "carol", "ta"]:
        _login(Client(), name, "guess", REMOTE_ADDR="192.0.2.7")
    assert _login(Client(), "teacher", PASSWORD, REMOTE_ADDR="192.0.2.7").status_code == 429
    assert _login(Client(), "teacher", PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 302


@pytest.mark.parametrize(
    ("target", "lands_on"),
    [
        ("/courses/1/", "/courses/1/"),
        ("https://evil.example/phish", "/courses/"),
        ("//evil.example/phish", "/courses/"),
        ("javascript:alert(1)", "/courses/"),
    ],
)
def test_redirect_after_sign_in_stays_on_this_site(world, target, lands_on):
    response = Client().post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302 and response["Location"] == lands_on


def test_register_page_creates_student_in_class_and_signs_in(world):
    client = Client()
    response = client.post(
        "/accounts/register/",
        {
            "join_code": world.course.join_code,
            "username": "yuki",
            "password": "sakura-blossom-7",
            "password2": "sakura-blossom-7",
        },
    )
    assert response["Location"] == "/courses/"
    assert client.get("/courses/").content.decode().count("Deep learning 1") == 1


def test_register_page_names_the_wrong_field(world):
    response = Client().post(
        "/accounts/register/",
        {
            "join_code": "WRONG999",
            "username": "yuki",
            "password": "sakura-blossom-7",
            "password2": "sakura-blossom-7",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "No open class has this join code" in response.content.decode()
    assert not User.objects.filter(username="yuki").exists()


def test_create_teacher_command(db):
    call_command("create_teacher", "suzuki", "--password", "kyoushitsu-2026")
    user = User.objects.get(username="suzuki")
    assert user.is_teacher and user.check_password("kyoushitsu-2026")


def test_seed_demo_is_idempotent_and_keeps_changed_passwords(db):
    call_command("seed_demo")
    student = User.objects.get(username="student")
    student.set_password("my-own-password-1")
    student.save()
    call_command("seed_demo")
    assert Course.objects.filter(name="Demo class").count() == 1
    student.refresh_from_db()
    assert student.check_password("my-own-password-1")
    course = Course.objects.get(name="Demo class")
    roles = dict(Membership.objects.filter(course=course).values_list("user__username", "role"))
    assert roles == {"teacher": "teacher", "student": "student"}
    assert User.objects.get(username="teacher").is_teacher


@pytest.mark.parametrize("persona", ["teacher", "ta", "alice", "other_teacher"])
def test_the_roster_knows_whose_password_may_be_reset_as_one_by_one(world, persona):
    from webapp.accounts import permissions
    from webapp.accounts.models import Membership

    colleague = make_user("colleague")
    add_member(world.course, colleague)
    add_member(world.other_course, colleague, role="ta")  # staff elsewhere: hands off
    members = list(Membership.objects.filter(course=world.course).select_related("user"))
    user = world.user(persona)
    one_by_one = {
        m.pk
        for m in members
        if m.is_active and permissions.can_reset_password(user, world.course, m.user)
    }
    assert permissions.resettable_memberships(user, world.course, members) == one_by_one
    assert bool(one_by_one) == (persona == "teacher")


def test_the_teachers_class_page_costs_the_same_queries_for_any_roster(
    world, django_assert_max_num_queries
):
    client = world.client("teacher")
    client.get(f"/courses/{world.course.pk}/")  # warm caches (sessions, translations)
    with django_assert_max_num_queries(20):
        client.get(f"/courses/{world.course.pk}/")
    for i in range(30):
        add_member(world.course, make_user(f"extra{i}"))
    with django_assert_max_num_queries(20):
        assert client.get(f"/courses/{world.course.pk}/").status_code == 200


def test_demo_teacher_may_reset_the_demo_students_password(db):
    from webapp.accounts import permissions

    call_command("seed_demo")
    course = Course.objects.get(name="Demo class")
    teacher, student = User.objects.get(username="teacher"), User.objects.get(username="student")
    assert permissions.can_reset_password(teacher, course, student)
