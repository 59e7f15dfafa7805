"""The labelling assignments' read-only API: what teachers, TAs, the students given images and
everybody else get, and its bounds."""

import pytest

from tests.conftest import assert_api_error
from tests.unit.test_labelling import hand_out, label, pool, uids

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(world):
    """Four images to alice and bob; alice 0 0 1 1, bob 0 1 1 1 (Cohen's κ 0.5 by hand)."""
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset)
    a, b, c, d = uids(dataset)
    label(dataset, world.alice, {a: 0, b: 0, c: 1, d: 1})
    label(dataset, world.bob, {a: 0, b: 1, c: 1, d: 1})
    return dataset, assignment


def get(world, persona, path):
    from django.test import Client

    return Client().get(f"/api/v1{path}", **world.bearer(persona))


def test_staff_read_the_figures_and_everybody_s_versions(world, labelled):
    dataset, assignment = labelled
    for persona in ("teacher", "ta"):
        body = get(world, persona, f"/labelling/{assignment.pk}").json()
        assert body["images"] == 4 and body["per_image"] == 2
        assert body["figures"]["cohen"] == pytest.approx(0.5)
        assert body["figures"]["disagree"] == 1 and "given" not in body
    page = get(world, "teacher", f"/labelling/{assignment.pk}/images?status=disagree").json()
    assert page["total"] == 1 and page["next"] is None
    (image,) = page["images"]
    assert image["item"] == uids(dataset)[1] and image["status"] == "disagree"
    assert {(v["student"], v["label"]) for v in image["versions"]} == {("alice", 0), ("bob", 1)}
    progress = get(world, "teacher", f"/labelling/{assignment.pk}/progress").json()
    assert [(s["student"], s["given"], s["answered"]) for s in progress["students"]] == [
        ("alice", 4, 4),
        ("bob", 4, 4),
    ]


def test_a_student_reads_only_their_own_work(world, labelled):
    _dataset, assignment = labelled
    body = get(world, "alice", f"/labelling/{assignment.pk}").json()
    assert body["given"] == 4 and body["done"] == 0 and "figures" not in body
    page = get(world, "alice", f"/labelling/{assignment.pk}/images?limit=2").json()
    assert page["total"] == 4 and page["next"] == 2 and len(page["images"]) == 2
    for image in page["images"]:
        assert [v["student"] for v in image["versions"]] == ["alice"]
        assert image["status"] is None and image["agreement"] is None
    assert_api_error(get(world, "alice", f"/labelling/{assignment.pk}/progress"), 403)
    listed = get(world, "alice", f"/courses/{world.course.pk}/labelling").json()
    assert [(row["id"], row["given"]) for row in listed] == [(assignment.pk, 4)]


@pytest.mark.parametrize(("persona", "status"), [("carol", 404), ("other_teacher", 404)])
def test_other_classes_get_nothing(world, labelled, persona, status):
    _dataset, assignment = labelled
    for path in ("", "/images", "/progress"):
        assert_api_error(get(world, persona, f"/labelling/{assignment.pk}{path}"), status)
    assert_api_error(get(world, persona, f"/courses/{world.course.pk}/labelling"), status)


def test_a_student_given_nothing_and_anonymous_get_nothing(world):
    dataset = pool(world, images=2)
    assignment = hand_out(world, dataset, students=("alice",), per_image=1)
    assert_api_error(get(world, "bob", f"/labelling/{assignment.pk}"), 404)
    assert get(world, "bob", f"/courses/{world.course.pk}/labelling").json() == []
    assert_api_error(get(world, "anon", f"/labelling/{assignment.pk}"), 401)


@pytest.mark.parametrize(
    ("query", "field"), [("limit=201", "limit"), ("limit=0", "limit"), ("status=maybe", "status")]
)
def test_pages_are_bounded(world, labelled, query, field):
    _dataset, assignment = labelled
    body = assert_api_error(
        get(world, "teacher", f"/labelling/{assignment.pk}/images?{query}"), 422
    )
    assert field in body["errors"]
