"""The studio's entry page: who may open the label grid and who may change labels there, the
class counts of one's draft view (a pool student's own images only), and the other kinds sent
to the first image's canvas."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PERSONAS
from webapp.datasets import drafts
from webapp.datasets.models import Category, Dataset, Item, StoredImage
from webapp.labelling.models import LabellingAssignment, LabellingTask

pytestmark = pytest.mark.django_db
CLASSES = ["cat", "dog", "bird"]
LABELS = [0, 0, 1, None, None]  # two cats, a dog, two without a class


def _dataset(world, *, owner="alice", kind="classification", visibility="private", labels=LABELS):
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.user(owner),
        name="pets",
        kind=kind,
        visibility=visibility,
        status="ready",
        head=1,
    )
    for index, name in enumerate(CLASSES):
        Category.objects.create(dataset=dataset, index=index, name=name, valid_from=1)
    for number, label in enumerate(labels):
        image, _ = StoredImage.objects.get_or_create(
            sha256=f"{number:064d}",
            defaults={
                "file": f"images/{number}.png",
                "thumb": f"images/{number}.png",
                "content_type": "image/png",
                "width": 8,
                "height": 8,
                "channels": 1,
                "bytes": 70,
                "phash": "0" * 16,
            },
        )
        Item.objects.create(
            dataset=dataset,
            image=image,
            original_path=f"{number}.png",
            category_index=label if kind == "classification" else None,
            valid_from=1,
        )
    return dataset


def _uids(dataset) -> list[str]:
    return [str(u) for u in dataset.items.order_by("id").values_list("uid", flat=True)]


def _open(world, persona, dataset, **query):
    return world.client(persona).get(reverse("studio_home", args=[dataset.pk]), query)


# --- who may open it, and who may change labels there -------------------------------------

# alice's private dataset: she and the class's teachers edit; the TA looks; others see nothing.
PRIVATE = {
    "anon": 302,
    "alice": 200,
    "bob": 404,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}
EDITS = {"alice": True, "teacher": True, "ta": False}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_opens_the_label_grid_of_a_private_dataset(world, persona):
    dataset = _dataset(world)
    response = _open(world, persona, dataset)
    assert response.status_code == PRIVATE[persona]
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("login"))
    if response.status_code != 200:
        return
    config = response.context["config"]
    assert config["editable"] is EDITS[persona]
    assert config["mayCommit"] is EDITS[persona]
    assert config["api"]["items"] == f"/api/v1/datasets/{dataset.pk}/studio/items"
    page = response.content.decode()
    assert 'id="grid"' in page and 'role="listbox"' in page
    assert ('id="commit-open"' in page) is EDITS[persona]
    assert ('id="autosave-state"' in page) is EDITS[persona]
    if not EDITS[persona]:
        assert "You may look at these labels but not change them." in page


def test_a_student_cannot_open_a_hidden_test_set_and_staff_can(world):
    dataset = _dataset(world, owner="teacher", visibility="hidden_test")
    assert _open(world, "alice", dataset).status_code == 403  # its summary is hers to see, no more
    assert _open(world, "carol", dataset).status_code == 404
    assert _open(world, "ta", dataset).status_code == 200
    assert _open(world, "teacher", dataset).context["config"]["editable"] is True


def test_a_shared_dataset_is_read_only_for_a_classmate(world):
    dataset = _dataset(world, visibility="shared")
    response = _open(world, "bob", dataset)
    assert response.status_code == 200
    assert response.context["config"]["editable"] is False
    assert 'id="add-class"' not in response.content.decode()


def test_nobody_edits_in_an_archived_class(world):
    dataset = _dataset(world)
    world.course.archived_at = timezone.now()
    world.course.save()
    response = _open(world, "alice", dataset)
    assert response.status_code == 200
    assert response.context["config"]["editable"] is False


# --- what the page counts ------------------------------------------------------------------


def test_the_class_counts_are_those_of_the_draft_view(world):
    dataset = _dataset(world)
    uids = _uids(dataset)
    config = _open(world, "alice", dataset).context["config"]
    assert config["counts"] == {"0": 2, "1": 1}
    assert config["unlabelled"] == 2
    assert config["changes"] == 0
    assert config["queue"] == "all"
    assert _open(world, "alice", dataset, queue="unlabelled").context["config"]["queue"] == (
        "unlabelled"
    )
    assert _open(world, "alice", dataset, queue="<b>").context["config"]["queue"] == "all"
    # A cat becomes a bird, an unlabelled image a dog, a dog loses its class.
    answer = drafts.apply(
        dataset,
        world.alice,
        [
            {"op": "label", "item": uids[0], "category": 2},
            {"op": "label", "item": uids[3], "category": 1},
            {"op": "label", "item": uids[2], "category": None},
        ],
    )
    assert not answer["refused"]
    config = _open(world, "alice", dataset).context["config"]
    assert config["counts"] == {"0": 1, "1": 1, "2": 1}
    assert config["unlabelled"] == 2
    assert config["changes"] == 3
    # Her draft is hers: the teacher sees the head's counts and an empty draft of their own.
    teacher = _open(world, "teacher", dataset).context["config"]
    assert teacher["counts"] == {"0": 2, "1": 1}
    assert teacher["changes"] == 0


def test_a_proposal_is_not_counted_until_accepted(world):
    dataset = _dataset(world)
    uids = _uids(dataset)
    drafts.write_proposals(
        dataset, world.alice, 7, [{"item": uids[4], "category": 2, "score": 0.4}]
    )
    config = _open(world, "alice", dataset).context["config"]
    assert config["counts"] == {"0": 2, "1": 1}
    assert config["unlabelled"] == 2
    drafts.apply(dataset, world.alice, [{"op": "accept", "item": uids[4], "uid": uids[4]}])
    config = _open(world, "alice", dataset).context["config"]
    assert config["counts"] == {"0": 2, "1": 1, "2": 1}
    assert config["unlabelled"] == 1


def _pool(world, given: dict[str, list[int]]):
    """The teacher's private pool of five images; each student is given some of them."""
    dataset = _dataset(world, owner="teacher", labels=[None, None, 1, None, 0])
    uids = _uids(dataset)
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Label the pets", created_by=world.teacher
    )
    for persona, numbers in given.items():
        for number in numbers:
            LabellingTask.objects.create(
                assignment=assignment, item_uid=uids[number], student=world.user(persona)
            )
    return dataset, uids


def test_a_pool_student_sees_counts_of_their_given_images_only(world):
    dataset, uids = _pool(world, {"bob": [0, 2], "alice": [1, 3, 4]})
    response = _open(world, "bob", dataset)
    assert response.status_code == 200
    config = response.context["config"]
    assert config["editable"] is True
    assert config["mayCommit"] is False and config["mayAddClass"] is False
    assert config["counts"] == {"1": 1}  # his dog; alice's cat is not counted
    assert config["unlabelled"] == 1
    page = response.content.decode()
    assert 'id="commit-open"' not in page and 'id="add-class"' not in page
    drafts.apply(dataset, world.bob, [{"op": "label", "item": uids[0], "category": 0}])
    config = _open(world, "bob", dataset).context["config"]
    assert config["counts"] == {"0": 1, "1": 1}
    assert config["unlabelled"] == 0
    # Carol was given nothing (and is in another class): nothing to see.
    assert _open(world, "carol", dataset).status_code == 404


# --- the other kinds and the empty cases ------------------------------------------------


def test_another_kind_opens_the_canvas_of_the_first_image_in_the_queue(world):
    dataset = _dataset(world, kind="detection")
    uids = _uids(dataset)
    response = _open(world, "alice", dataset)
    assert response.status_code == 302
    assert response["Location"] == reverse("studio_item", args=[dataset.pk, uids[0]])
    # A pool student starts at the first of their own images.
    pool = _dataset(world, owner="teacher", kind="segmentation")
    pool_uids = _uids(pool)
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=pool, title="Outline", created_by=world.teacher
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=pool_uids[3], student=world.bob)
    response = _open(world, "bob", pool)
    assert response["Location"] == reverse("studio_item", args=[pool.pk, pool_uids[3]])


def test_a_dataset_without_images_gets_a_friendly_page(world):
    empty = _dataset(world, kind="detection", labels=[])
    response = _open(world, "alice", empty)
    assert response.status_code == 200
    assert "This dataset has no images to annotate yet." in response.content.decode()
    processing = _dataset(world)
    Dataset.objects.filter(pk=processing.pk).update(status="processing")
    response = _open(world, "alice", processing)
    assert response.status_code == 200
    assert 'id="studio-empty"' in response.content.decode()
    assert "grid-config" not in response.content.decode()


def test_the_grid_page_reads_in_japanese(world):
    dataset = _dataset(world)
    client = world.client("alice")
    response = client.get(reverse("studio_home", args=[dataset.pk]), HTTP_ACCEPT_LANGUAGE="ja")
    page = response.content.decode()
    assert "画像にラベルを付ける" in page
    assert response.context["config"]["words"]["saved"] == "保存済み"


def test_an_image_left_without_a_class_is_not_trained_on(world):
    """The grid's `x` leaves an image without a class; a run on that version skips it."""
    from webapp.jobs import tasks
    from webapp.jobs.models import Job

    dataset = _dataset(world)
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=1,
        spec={"kind": "classification", "model": "logistic", "epochs": 1},
        status="queued",
    )
    items = tasks.build_spec(job)["data"]["items"]
    assert [item["label"] for item in items] == [0, 0, 1]
