"""Labelling assignments: handing out a pool, who sees what, marking done, agreement from the
students' drafts, resolving and publishing one version.

Pools are made row by row (no image files): every test is about the rules.
"""

import uuid

import pytest

from tests.conftest import ready_dataset
from webapp.datasets import drafts
from webapp.datasets.models import (
    Annotation,
    Dataset,
    Item,
    Version,
    at_version,
)
from webapp.labelling import actions, queries
from webapp.labelling.models import LabellingAssignment, LabellingResolution, LabellingTask

pytestmark = pytest.mark.django_db


def pool(world, kind="classification", images=4, owner="teacher", visibility="private"):
    """A ready dataset at version 1 with classes cat (0) and dog (1); the first image is
    labelled cat (classification) or has one cat box (other kinds)."""
    return ready_dataset(
        world.course, world.user(owner), kind=kind, name=f"pool {kind}", images=images,
        visibility=visibility, keypoints=("head", "hand") if kind == "keypoints" else (),
        box_area=0.0,
    )  # fmt: skip


def uids(dataset) -> list[str]:
    return [str(u) for u in dataset.items.order_by("id").values_list("uid", flat=True)]


def hand_out(world, dataset, per_image=2, students=("alice", "bob"), **options):
    return actions.create_assignment(
        world.teacher,
        world.course,
        dataset,
        title="Cats and dogs",
        per_image=per_image,
        students=[world.user(s).pk for s in students],
        **options,
    )


def label(dataset, user, labels: dict) -> None:
    """A student's labels through the drafts, as the studio's grid saves them."""
    answer = drafts.apply(
        dataset,
        user,
        [{"op": "label", "item": uid, "category": c} for uid, c in labels.items()],
    )
    assert not answer["refused"], answer["refused"]


# --- creating and handing out ----------------------------------------------------------------


def test_two_students_two_per_image_both_get_every_image(world):
    dataset = pool(world)
    assignment = hand_out(world, dataset)
    for student in (world.alice, world.bob):
        given = set(
            map(str, assignment.tasks.filter(student=student).values_list("item_uid", flat=True))
        )
        assert given == set(uids(dataset))
    assert assignment.selection == {"mode": "all", "count": None, "seed": 0, "images": 4}


def test_all_active_students_of_the_class_by_default_and_the_load_balanced(world):
    from tests.conftest import add_member, make_user

    for name in ("chika", "daiki", "eri"):
        add_member(world.course, make_user(name))
    dataset = pool(world, images=7)
    assignment = actions.create_assignment(
        world.teacher, world.course, dataset, title="t", per_image=2
    )
    load = {}
    for student in assignment.tasks.values_list("student__username", flat=True):
        load[student] = load.get(student, 0) + 1
    # 7 images × 2 = 14 tasks over 5 students (alice, bob, chika, daiki, eri; not the TA): 3 or 2.
    assert set(load) == {"alice", "bob", "chika", "daiki", "eri"}
    assert sorted(load.values()) == [2, 3, 3, 3, 3]


def test_random_images_with_a_seed_are_the_same_images_again(world):
    dataset = pool(world, images=30)
    first = hand_out(world, dataset, mode="random", count=5, seed=7)
    again = hand_out(world, dataset, mode="random", count=5, seed=7)
    other = hand_out(world, dataset, mode="random", count=5, seed=8)

    def chosen(a):
        return list(a.tasks.order_by("id").values_list("item_uid", flat=True))

    assert chosen(first) == chosen(again)
    assert len(set(chosen(first))) == 5
    assert chosen(first) != chosen(other)


def test_unlabelled_images_only(world):
    dataset = pool(world, images=4)  # image 0 is labelled cat
    assignment = hand_out(world, dataset, mode="unlabelled", count=10)
    given = {str(u) for u in assignment.tasks.values_list("item_uid", flat=True)}
    assert given == set(uids(dataset)[1:])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"per_image": 4}, "per_image"),
        ({"per_image": 3}, "per_image"),  # only two students chosen
        ({"mode": "random"}, "count"),  # random needs N
        ({"mode": "random", "count": actions.MAX_IMAGES + 1}, "count"),
        ({"mode": "sideways"}, "mode"),
        ({"seed": -1}, "seed"),
        ({"title": "  "}, "title"),
    ],
)
def test_bad_choices_are_refused_naming_the_field(world, options, field):
    dataset = pool(world)
    options = {"title": "t", "per_image": 2, **options}
    with pytest.raises(actions.LabellingRefused) as refused:
        actions.create_assignment(
            world.teacher,
            world.course,
            dataset,
            students=[world.alice.pk, world.bob.pk],
            **options,
        )
    assert refused.value.field == field
    assert not LabellingAssignment.objects.exists()


def test_only_students_of_the_class_and_only_editable_non_hidden_pools(world):
    dataset = pool(world)
    with pytest.raises(actions.LabellingRefused) as refused:
        hand_out(world, dataset, students=("alice", "carol"))
    assert refused.value.field == "students"
    with pytest.raises(actions.LabellingRefused) as refused:
        hand_out(world, dataset, students=("alice", "ta"), per_image=1)  # a TA is no student
    assert refused.value.field == "students"
    hidden = pool(world, visibility="hidden_test")
    with pytest.raises(actions.LabellingRefused) as refused:
        hand_out(world, hidden)
    assert refused.value.field == "dataset"
    # A TA edits only their own datasets: the teacher's pool is not theirs to hand out.
    with pytest.raises(actions.LabellingRefused) as refused:
        actions.create_assignment(world.ta, world.course, dataset, title="t", per_image=1)
    assert refused.value.field == "dataset"
    own = pool(world, owner="ta")
    assert actions.create_assignment(world.ta, world.course, own, title="t", per_image=1)
    # Students and other classes' teachers create nothing.
    for user in (world.alice, world.other_teacher):
        with pytest.raises(actions.NotAllowed):
            actions.create_assignment(user, world.course, dataset, title="t", per_image=1)


# --- the students' drafts: only their images ---------------------------------------------------


def test_a_student_drafts_only_the_images_given_to_them(world):
    dataset = pool(world, images=4)
    hand_out(world, dataset, per_image=1)  # alice: images 0, 2; bob: 1, 3
    items = uids(dataset)
    assert drafts.may_draft(world.alice, dataset, items[0])
    assert not drafts.may_draft(world.alice, dataset, items[1])
    assert not drafts.may_draft(world.carol, dataset, items[0])
    answer = drafts.apply(
        dataset,
        world.alice,
        [
            {"op": "label", "item": items[0], "category": 1},
            {"op": "label", "item": items[1], "category": 1},
        ],
    )
    assert [r["index"] for r in answer["refused"]] == [1]


# --- agreement from the drafts -------------------------------------------------------------


def test_agreement_of_two_students_labels(world):
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset)
    a, b, c, d = uids(dataset)
    # alice: cat cat dog dog; bob: cat dog dog dog → Cohen's κ 0.5 (test_labelling_agreement).
    label(dataset, world.alice, {a: 0, b: 0, c: 1, d: 1})
    label(dataset, world.bob, {a: 0, b: 1, c: 1, d: 1})
    states = queries.gather(assignment)
    figures = queries.figures(dataset.kind, states)
    assert figures["cohen"] == pytest.approx(0.5)
    assert figures["fleiss"] == pytest.approx(0.466667, abs=1e-6)
    assert figures["images"] == 4 and figures["compared"] == 4
    assert figures["disagree"] == 1 and figures["agreed"] == 3
    assert states[b].status == queries.DISAGREE and states[b].agreement == 0.0
    assert states[a].status == queries.AGREED and states[a].publishable == {"label": 0}


def test_an_image_waits_until_every_student_answered(world):
    dataset = pool(world, images=2)
    assignment = hand_out(world, dataset)
    a, b = uids(dataset)
    label(dataset, world.alice, {a: 1, b: 1})
    states = queries.gather(assignment)
    # Image a is labelled cat in the pool; bob has not touched it: his "cat" is not an answer.
    assert states[a].status == queries.WAITING and states[a].agreement is None
    assert queries.figures(dataset.kind, states)["cohen"] is None
    progress = queries.progress(assignment, states)
    assert progress[world.alice.pk] == {"given": 2, "answered": 2, "done": 0}
    assert progress[world.bob.pk] == {"given": 2, "answered": 0, "done": 0}


def test_boxes_agreement_and_the_central_version(world):
    dataset = pool(world, kind="detection", images=1)
    assignment = hand_out(world, dataset)
    (item,) = uids(dataset)
    head = str(Annotation.objects.get().uid)
    # alice keeps the pool's box [10,10,20,20] and adds [50,40,20,20]; bob moves the pool's
    # box to [12,10,20,20] and adds nothing. Pairs: pool box vs moved box: intersection
    # 18 × 20 = 360, union 400 + 400 − 360 = 440 → 0.818182; alice's new box unmatched (0).
    # Mean over 2 + 1 − 1 = 2 units: 0.818182 / 2 = 0.409091 < 0.7: a disagreement.
    drafts.apply(
        dataset,
        world.alice,
        [{"op": "create", "item": item, "uid": str(uuid.uuid4()),
          "data": {"category": 0, "bbox": [50, 40, 20, 20]}}],
    )  # fmt: skip
    drafts.apply(
        dataset,
        world.bob,
        [{"op": "update", "item": item, "uid": head, "revision": 1,
          "data": {"category": 0, "bbox": [12, 10, 20, 20]}}],
    )  # fmt: skip
    state = queries.gather(assignment)[item]
    assert state.agreement == pytest.approx(0.818182 / 2, abs=1e-6)
    assert state.status == queries.DISAGREE and state.publishable is None


def test_three_students_agree_and_the_most_central_version_is_published(world):
    from tests.conftest import add_member, make_user

    chika = make_user("chika")
    add_member(world.course, chika)
    dataset = pool(world, kind="detection", images=1)
    assignment = actions.create_assignment(
        world.teacher, world.course, dataset, title="Three", per_image=3
    )  # every student of the class: alice, bob and chika
    (item,) = uids(dataset)
    head = str(Annotation.objects.get().uid)
    # alice keeps the pool's box [10,10,20,20] (and says so); bob moves it to x 11, chika to y 11.
    # alice–bob: 19 × 20 = 380 / (800 − 380) = 0.904762; alice–chika the same;
    # bob–chika: 19 × 19 = 361 / (800 − 361) = 0.822323. Mean: (2 · 0.904762 + 0.822323) / 3
    # = 0.877282 ≥ 0.7: agreed. alice agrees best with the others (0.904762 on average, bob and
    # chika 0.863543): hers is the version published.
    actions.mark_done(assignment, world.alice)
    for user, box in ((world.bob, [11, 10, 20, 20]), (chika, [10, 11, 20, 20])):
        drafts.apply(
            dataset,
            user,
            [{"op": "update", "item": item, "uid": head, "revision": 1,
              "data": {"category": 0, "bbox": box}}],
        )  # fmt: skip
    state = queries.gather(assignment)[item]
    assert state.agreement == pytest.approx(0.877282, abs=1e-6)
    assert state.status == queries.AGREED and state.chosen == world.alice.pk
    assert [a["bbox"] for a in state.publishable["annotations"]] == [[10, 10, 20, 20]]


# --- pages and who sees them -----------------------------------------------------------------


@pytest.fixture
def handed_out(world):
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset, students=("alice",), per_image=1)
    return dataset, assignment


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("teacher", 200),
        ("ta", 200),
        ("alice", 403),
        ("bob", 403),
        ("carol", 404),
        ("other_teacher", 404),
        ("anon", 302),
    ],
)
def test_who_may_open_the_new_assignment_form(world, persona, status):
    response = world.client(persona).get(f"/courses/{world.course.pk}/labelling/new/")
    assert response.status_code == status


@pytest.mark.parametrize(
    ("persona", "status", "shows"),
    [
        ("teacher", 200, "Progress per student"),
        ("ta", 200, "Progress per student"),
        ("alice", 200, "Your images"),
        ("bob", 404, None),  # a student of the class given no image here
        ("carol", 404, None),
        ("other_teacher", 404, None),
        ("anon", 302, None),
    ],
)
def test_who_sees_the_assignment(world, handed_out, persona, status, shows):
    _dataset, assignment = handed_out
    response = world.client(persona).get(f"/labelling/{assignment.pk}/")
    assert response.status_code == status
    if shows:
        assert shows in response.content.decode()


def test_a_student_sees_only_their_own_images_and_labels(world):
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset, per_image=1)  # alice 0, 2; bob 1, 3
    items = uids(dataset)
    label(dataset, world.bob, {items[1]: 1})
    page = world.client("alice").get(f"/labelling/{assignment.pk}/").content.decode()
    assert "img0.png" in page and "img2.png" in page
    assert "img1.png" not in page and "img3.png" not in page
    assert "bob" not in page
    staff = world.client("teacher").get(f"/labelling/{assignment.pk}/").content.decode()
    assert "img1.png" in staff and "bob: dog" in staff


@pytest.mark.parametrize(
    ("kind", "data", "drawn"),
    [
        ("detection", {"bbox": [50, 40, 20, 20]}, "<rect"),
        ("segmentation", {"segmentation": [[50, 40, 70, 40, 70, 60]]}, "<polygon"),
        (
            "segmentation",
            {
                "segmentation": {
                    "size": [80, 100],
                    "counts": "Xn3d0l10000000000000000000000000000000000000hY2",
                }
            },
            "<polygon",
        ),
        ("keypoints", {"bbox": [40, 30, 40, 40], "keypoints": [50, 40, 2, 60, 50, 1]}, "<circle"),
    ],
)
def test_the_resolve_page_draws_each_students_objects(world, kind, data, drawn):
    dataset = pool(world, kind=kind, images=1)
    assignment = hand_out(world, dataset)
    (item,) = uids(dataset)
    answer = drafts.apply(
        dataset,
        world.bob,
        [{"op": "create", "item": item, "uid": str(uuid.uuid4()), "data": {"category": 1, **data}}],
    )
    assert not answer["refused"], answer["refused"]
    page = world.client("teacher").get(f"/labelling/{assignment.pk}/images/{item}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="lab-svg"') == 2 and drawn in html
    assert "not answered yet" in html  # alice has not touched it


@pytest.mark.parametrize(
    ("persona", "status"),
    [("teacher", 200), ("ta", 200), ("alice", 403), ("carol", 404), ("anon", 302)],
)
def test_who_may_open_the_resolve_page(world, handed_out, persona, status):
    dataset, assignment = handed_out
    url = f"/labelling/{assignment.pk}/images/{uids(dataset)[0]}/"
    assert world.client(persona).get(url).status_code == status
    if status != 200:
        response = world.client(persona).post(url, {"action": "resolve", "student": "none"})
        assert response.status_code == status
        assert not LabellingResolution.objects.exists()


def test_the_class_page_lists_a_students_labelling_with_progress(world, handed_out):
    _dataset, assignment = handed_out
    page = world.client("alice").get(f"/courses/{world.course.pk}/").content.decode()
    assert 'id="labelling-panel"' in page and "Cats and dogs" in page and "0 / 4" in page
    assert f"/datasets/{assignment.dataset_id}/studio/" in page
    # bob was given nothing: no panel; the teacher sees it with the button to make another.
    assert (
        'id="labelling-panel"'
        not in world.client("bob").get(f"/courses/{world.course.pk}/").content.decode()
    )
    staff = world.client("teacher").get(f"/courses/{world.course.pk}/").content.decode()
    assert "Cats and dogs" in staff and 'id="new-labelling"' in staff


def test_a_student_marks_their_images_done_and_nobody_else_can(world):
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset, per_image=1)
    items = uids(dataset)
    url = f"/labelling/{assignment.pk}/done/"
    assert world.client("alice").post(url, {"item": items[0]}).status_code == 302
    done = set(
        map(
            str,
            LabellingTask.objects.filter(done_at__isnull=False).values_list("item_uid", flat=True),
        )
    )
    assert done == {items[0]}
    # bob cannot mark alice's image (his tasks do not include it): nothing changes.
    world.client("bob").post(url, {"item": items[0], "done": "0"})
    assert LabellingTask.objects.filter(done_at__isnull=False).count() == 1
    assert world.client("teacher").post(url).status_code == 403
    assert world.client("carol").post(url).status_code == 404
    world.client("alice").post(url)  # all of hers
    assert set(
        LabellingTask.objects.filter(done_at__isnull=False).values_list(
            "student__username", flat=True
        )
    ) == {"alice"}
    assert world.client("alice").post(url, {"item": "not-a-uuid"}).status_code == 302


def test_the_create_form_hands_out_the_images(world):
    dataset = pool(world, images=3)
    response = world.client("teacher").post(
        f"/courses/{world.course.pk}/labelling/new/",
        {
            "title": "Label the pool",
            "dataset": dataset.pk,
            "mode": "all",
            "seed": 0,
            "per_image": 2,
            "everyone": "on",
        },
    )
    assignment = LabellingAssignment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/labelling/{assignment.pk}/"
    assert assignment.tasks.count() == 6
    # A bad choice comes back on the form, naming its field.
    response = world.client("teacher").post(
        f"/courses/{world.course.pk}/labelling/new/",
        {"title": "x", "dataset": dataset.pk, "mode": "random", "seed": 0, "per_image": 2,
         "everyone": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Give the number of images" in response.content.decode()
    assert LabellingAssignment.objects.count() == 1


# --- resolve and publish -------------------------------------------------------------------


def test_publish_writes_one_version_with_the_resolved_labels(world):
    dataset = pool(world, images=4)
    assignment = hand_out(world, dataset)
    a, b, c, d = uids(dataset)
    label(dataset, world.alice, {a: 0, b: 0, c: 1, d: 1})
    label(dataset, world.bob, {a: 0, b: 1, c: 1, d: 1})
    client = world.client("teacher")
    response = client.post(
        f"/labelling/{assignment.pk}/images/{b}/", {"action": "resolve", "student": world.bob.pk}
    )
    assert response.status_code == 302
    assert LabellingResolution.objects.get().data == {"label": 1}
    # bob changes his mind afterwards: the teacher chose what they saw.
    label(dataset, world.bob, {b: 0})
    assert client.post(f"/labelling/{assignment.pk}/publish/").status_code == 302
    dataset.refresh_from_db()
    assignment.refresh_from_db()
    assert dataset.head == 2 and assignment.published_version == 2
    assert Version.objects.filter(dataset=dataset).count() == 2
    assert "Cats and dogs" in Version.objects.get(dataset=dataset, number=2).summary

    def labels_at(number):
        rows = Item.objects.filter(at_version(number), dataset=dataset)
        return {str(i.uid): i.category_index for i in rows}

    assert labels_at(2) == {a: 0, b: 1, c: 1, d: 1}
    assert labels_at(1) == {a: 0, b: None, c: None, d: None}  # the earlier version as it was
    # The students' drafts are theirs: nothing of them was lost.
    assert drafts.labels_of(drafts.draft_of(dataset, world.alice), [b]) == {b: 0}
    # Publishing again with nothing changed makes no empty version.
    with pytest.raises(actions.LabellingRefused):
        actions.publish(assignment, world.teacher)
    assert Dataset.objects.get(pk=dataset.pk).head == 2


def test_none_of_them_leaves_the_image_as_it_is_and_disagreements_wait(world):
    dataset = pool(world, images=3)
    assignment = hand_out(world, dataset)
    a, b, c = uids(dataset)
    label(dataset, world.alice, {a: 1, b: 1, c: 0})
    label(dataset, world.bob, {a: 0, b: 1, c: 1})
    actions.resolve(assignment, world.teacher, a, None)  # a stays cat, as the pool has it
    version = actions.publish(assignment, world.teacher)
    rows = {
        str(i.uid): i.category_index for i in Item.objects.filter(at_version(2), dataset=dataset)
    }
    assert version.number == 2 and rows == {a: 0, b: 1, c: None}  # c: still a disagreement
    assert version.summary.startswith("Labelling assignment")


def test_publish_of_boxes_makes_the_image_the_chosen_version(world):
    dataset = pool(world, kind="detection", images=1)
    assignment = hand_out(world, dataset)
    (item,) = uids(dataset)
    head = Annotation.objects.get()
    new = str(uuid.uuid4())
    # alice moves the pool's box and adds one; bob deletes the pool's box.
    drafts.apply(
        dataset,
        world.alice,
        [{"op": "update", "item": item, "uid": str(head.uid), "revision": 1,
          "data": {"category": 1, "bbox": [11, 10, 20, 20]}},
         {"op": "create", "item": item, "uid": new,
          "data": {"category": 0, "bbox": [50, 40, 10, 10]}}],
    )  # fmt: skip
    drafts.apply(
        dataset, world.bob, [{"op": "delete", "item": item, "uid": str(head.uid), "revision": 1}]
    )
    with pytest.raises(actions.LabellingRefused):  # not answered by both: nothing to publish
        actions.publish(assignment, world.teacher)
    actions.mark_done(assignment, world.bob)
    actions.resolve(assignment, world.teacher, item, world.alice.pk)
    version = actions.publish(assignment, world.teacher)
    now = Annotation.objects.filter(item__dataset=dataset, item__valid_from=version.number)
    assert sorted((str(a.uid), a.category_index, a.bbox) for a in now) == sorted(
        [(str(head.uid), 1, [11.0, 10.0, 20.0, 20.0]), (new, 0, [50.0, 40.0, 10.0, 10.0])]
    )
    before = Annotation.objects.get(item__dataset=dataset, item__valid_from=1)
    assert before.bbox == [10, 10, 20, 20] and before.category_index == 0
    # The same again is nothing new: refused, no version 3.
    with pytest.raises(actions.LabellingRefused):
        actions.publish(assignment, world.teacher)
    assert Dataset.objects.get(pk=dataset.pk).head == version.number


def test_publish_is_refused_while_the_teacher_has_own_studio_edits(world):
    dataset = pool(world, images=2)
    assignment = hand_out(world, dataset)
    a, b = uids(dataset)
    label(dataset, world.alice, {a: 1, b: 1})
    label(dataset, world.bob, {a: 1, b: 1})
    label(dataset, world.teacher, {b: 0})
    with pytest.raises(actions.LabellingRefused):
        actions.publish(assignment, world.teacher)
    assert Dataset.objects.get(pk=dataset.pk).head == 1


def test_only_staff_resolve_and_only_who_may_edit_the_pool_publishes(world):
    dataset = pool(world, images=2)
    assignment = hand_out(world, dataset)
    a, b = uids(dataset)
    label(dataset, world.alice, {a: 1, b: 1})
    label(dataset, world.bob, {a: 1, b: 0})
    with pytest.raises(actions.NotAllowed):
        actions.resolve(assignment, world.alice, b, world.alice.pk)
    actions.resolve(assignment, world.ta, b, world.alice.pk)  # a TA resolves
    with pytest.raises(actions.NotAllowed):
        actions.publish(assignment, world.ta)  # but the teacher's pool is not theirs to edit
    for persona, status in (("alice", 403), ("carol", 404), ("anon", 302)):
        assert world.client(persona).post(f"/labelling/{assignment.pk}/publish/").status_code == (
            status
        )
    assert Dataset.objects.get(pk=dataset.pk).head == 1
    with pytest.raises(actions.LabellingRefused):
        actions.resolve(assignment, world.teacher, b, world.carol.pk)  # not given the image
    actions.publish(assignment, world.teacher)
    assert Dataset.objects.get(pk=dataset.pk).head == 2


def test_an_archived_class_reads_its_labelling_but_changes_nothing(world):
    from django.utils import timezone

    from webapp.accounts.permissions import CourseArchived

    dataset = pool(world, images=2)
    assignment = hand_out(world, dataset)
    a, b = uids(dataset)
    label(dataset, world.alice, {a: 1, b: 1})
    label(dataset, world.bob, {a: 1, b: 0})
    world.course.archived_at = timezone.now()
    world.course.save()
    assignment.refresh_from_db()
    for write in (
        lambda: actions.mark_done(assignment, world.alice),
        lambda: actions.resolve(assignment, world.teacher, b, world.alice.pk),
        lambda: actions.publish(assignment, world.teacher),
        lambda: hand_out(world, dataset),
    ):
        with pytest.raises(CourseArchived):
            write()
    staff = world.client("teacher").get(f"/labelling/{assignment.pk}/")
    assert staff.status_code == 200 and 'id="publish-button"' not in staff.content.decode()
    mine = world.client("alice").get(f"/labelling/{assignment.pk}/")
    assert mine.status_code == 200 and 'id="mark-all-done"' not in mine.content.decode()
    assert world.client("alice").post(f"/labelling/{assignment.pk}/done/").status_code == 403
    assert world.client("teacher").post(f"/labelling/{assignment.pk}/publish/").status_code == 403
    assert not LabellingTask.objects.filter(done_at__isnull=False).exists()
    assert Dataset.objects.get(pk=dataset.pk).head == 1
