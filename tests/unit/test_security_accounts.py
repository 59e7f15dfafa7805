"""A teacher never gains power over an account their class did not make (issue 10, item 1).

The takeover that was possible: the teacher of another class imports a roster line naming an
existing student, the import adds that account to their class, they reset its password and sign
in as it. Every step of it is refused here.
"""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import PASSWORD, PERSONAS, add_member, make_user
from webapp.accounts import actions, permissions
from webapp.accounts.models import Membership, User

pytestmark = pytest.mark.django_db

# Accounts of `course` (made there, or staff there) that `other_course`'s teacher goes after.
COURSE_ACCOUNTS = ["alice", "bob", "ta", "teacher"]


def _import(client: Client, course_id: int, text: str):
    upload = SimpleUploadedFile("roster.csv", text.encode(), content_type="text/csv")
    return client.post(f"/courses/{course_id}/roster/import/", {"roster": upload})


def _reset_by_page(client: Client, course_id: int, membership_id: int):
    return client.post(
        f"/courses/{course_id}/members/{membership_id}/", {"action": "reset_password"}
    )


def _reset_by_api(world, persona: str, course_id: int, user_id: int):
    return Client().post(
        f"/api/v1/courses/{course_id}/members/{user_id}/password", **world.bearer(persona)
    )


@pytest.mark.parametrize("target", COURSE_ACCOUNTS)
def test_another_classs_teacher_cannot_import_reset_and_sign_in_as_an_account(world, target):
    victim = world.user(target)
    thief = world.client("other_teacher")
    other = world.other_course

    # 1. The roster line naming the account (in any letter case) is refused, with its line.
    response = _import(thief, other.pk, f"username,display_name\nnewcomer,N\n{target.upper()},x\n")
    assert response.status_code == 200
    rows = {row.line: row for row in response.context["rows"]}
    assert rows[2].status == "created"
    assert rows[3].status == "" and "join" in rows[3].error and "code" in rows[3].error
    page = response.content.decode()
    assert "This user exists already" in page and "<td>3</td>" in page

    # 2. Not enrolled: no membership, so the class page, roster and API list do not show them.
    assert not Membership.objects.filter(course=other, user=victim).exists()
    roster = thief.get(f"/courses/{other.pk}/").content.decode()
    assert f'data-username="{victim.username}"' not in roster

    # 3. No reset: the page and the API find no such member of the thief's class.
    assert _reset_by_api(world, "other_teacher", other.pk, victim.pk).status_code == 404
    own = Membership.objects.get(course=world.course, user=victim)
    assert _reset_by_page(thief, world.course.pk, own.pk).status_code == 404

    # 4. So nobody signs in as them but themselves; their class stays closed to the thief.
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD)
    assert thief.get(f"/courses/{world.course.pk}/").status_code == 404


def test_a_teacher_cannot_import_a_student_of_another_class_either(world):
    rows = actions.bulk_create_students(world.course, "carol\n")
    assert rows[0].status == "" and "join" in rows[0].error
    assert not Membership.objects.filter(course=world.course, user=world.carol).exists()


def test_the_import_refusal_reads_in_japanese(world):
    client = world.client("other_teacher")
    upload = SimpleUploadedFile("名簿.csv", b"alice\n", content_type="text/csv")
    page = client.post(
        f"/courses/{world.other_course.pk}/roster/import/",
        {"roster": upload},
        HTTP_ACCEPT_LANGUAGE="ja",
    ).content.decode()
    assert "参加コード" in page and "This user exists" not in page


def test_a_student_who_joined_with_the_code_is_not_the_new_teachers_to_reset(world):
    """Carol (made by the other class) joins `course` herself: neither teacher may reset."""
    membership = actions.join_course(world.carol, world.course.join_code)
    teacher = world.client("teacher")
    assert _reset_by_page(teacher, world.course.pk, membership.pk).status_code == 403
    theirs = Membership.objects.get(course=world.other_course, user=world.carol)
    other_teacher = world.client("other_teacher")
    assert _reset_by_page(other_teacher, world.other_course.pk, theirs.pk).status_code == 403
    assert _reset_by_api(world, "teacher", world.course.pk, world.carol.pk).status_code == 403
    world.carol.refresh_from_db()
    assert world.carol.check_password(PASSWORD)


@pytest.mark.parametrize("persona", PERSONAS)
def test_nobody_may_reset_a_student_who_is_also_in_another_teachers_class(world, persona):
    actions.join_course(world.alice, world.other_course.join_code)
    for course in (world.course, world.other_course):
        membership = Membership.objects.get(course=course, user=world.alice)
        response = _reset_by_page(world.client(persona), course.pk, membership.pk)
        assert response.status_code in (302, 403, 404)  # sign in / not allowed / not yours
    world.alice.refresh_from_db()
    assert world.alice.check_password(PASSWORD)


def test_the_class_that_made_an_account_may_reset_it_until_it_joins_elsewhere(world):
    actions.bulk_create_students(world.other_course, "newcomer,New\n")
    newcomer = User.objects.get(username="newcomer")
    assert newcomer.created_in_course == world.other_course
    theirs = Membership.objects.get(course=world.other_course, user=newcomer)
    other_teacher = world.client("other_teacher")
    response = _reset_by_page(other_teacher, world.other_course.pk, theirs.pk)
    assert response.status_code == 200
    newcomer.refresh_from_db()
    assert newcomer.check_password(response.context["password"])

    actions.join_course(newcomer, world.course.join_code)  # now also in Sato Sensei's class
    assert _reset_by_page(other_teacher, world.other_course.pk, theirs.pk).status_code == 403
    here = Membership.objects.get(course=world.course, user=newcomer)
    assert _reset_by_page(world.client("teacher"), world.course.pk, here.pk).status_code == 403


def test_a_teacher_of_both_classes_may_reset_from_either(world):
    """The rule is about the teacher: the making class and every class of the student are theirs."""
    add_member(world.other_course, world.teacher, role="teacher")
    actions.join_course(world.alice, world.other_course.join_code)
    there = Membership.objects.get(course=world.other_course, user=world.alice)
    response = _reset_by_page(world.client("teacher"), world.other_course.pk, there.pk)
    assert response.status_code == 200


def test_registering_with_the_join_code_makes_the_account_the_classs(world):
    student = actions.register_student("hanako", "a-long-passphrase", world.course.join_code)
    assert student.created_in_course == world.course
    assert permissions.can_reset_password(world.teacher, world.course, student)
    assert not permissions.can_reset_password(world.other_teacher, world.course, student)


def test_a_roster_file_brings_back_only_accounts_the_class_made(world):
    for name in ("alice", "carol"):
        user = world.user(name)
        membership = add_member(world.other_course, user) if name == "alice" else None
        membership = membership or Membership.objects.get(course=world.other_course, user=user)
        actions.remove_member(world.other_course, membership)
    rows = {r.username: r for r in actions.bulk_create_students(world.other_course, "alice\ncarol")}
    assert rows["carol"].status == "added"  # made by this class, removed, now back
    assert rows["alice"].status == "" and rows["alice"].error  # made by the other class
    active = Membership.objects.active().filter(course=world.other_course)
    assert set(active.values_list("user__username", flat=True)) == {"other_teacher", "carol"}


def test_the_roster_page_offers_reset_only_where_it_is_allowed(world):
    actions.join_course(world.carol, world.course.join_code)
    page = world.client("teacher").get(f"/courses/{world.course.pk}/").content.decode()
    rows = {
        name: page.split(f'data-username="{name}"')[1].split("</tr>")[0]
        for name in ("alice", "bob", "carol", "ta")
    }
    assert 'value="reset_password"' in rows["alice"] and 'value="reset_password"' in rows["bob"]
    assert 'value="reset_password"' not in rows["carol"]
    assert 'value="reset_password"' not in rows["ta"]


def test_the_migration_names_the_making_class_only_where_the_rows_prove_it(world):
    migration = importlib.import_module("webapp.accounts.migrations.0003_user_created_in_course")
    made_here = make_user("made_here")
    add_member(world.course, made_here)  # same request as the account: a roster import
    added_later = make_user("added_later")
    User.objects.filter(pk=added_later.pk).update(
        date_joined=added_later.date_joined - timedelta(days=30)
    )
    add_member(world.other_course, added_later)  # an old account added much later: a takeover
    User.objects.filter(pk__in=[world.alice.pk, world.bob.pk]).update(created_in_course=None)

    migration.backfill_created_in_course(apps, None)

    made_here.refresh_from_db()
    added_later.refresh_from_db()
    assert made_here.created_in_course == world.course
    assert added_later.created_in_course is None
    assert User.objects.get(username="teacher").created_in_course is None  # teachers: never
