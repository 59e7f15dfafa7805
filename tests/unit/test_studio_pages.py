"""The studio's canvas page: who may open an image, who may change it there (read-only
otherwise), images of other datasets and of other students' pools, the page's config for its
scripts, and the dataset page's Annotate button."""

import json
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PERSONAS
from webapp.datasets.models import Category, Dataset, Item, StoredImage
from webapp.labelling.models import LabellingAssignment, LabellingTask

pytestmark = pytest.mark.django_db
CLASSES = ["circle", "square"]


def _dataset(world, *, owner="alice", kind="detection", visibility="private", images=3):
    dataset = Dataset.objects.create(
        course=world.course,
        owner=world.user(owner),
        name="shapes",
        kind=kind,
        visibility=visibility,
        status="ready",
        head=1,
    )
    for index, name in enumerate(CLASSES):
        Category.objects.create(dataset=dataset, index=index, name=name, valid_from=1)
    for number in range(images):
        image, _ = StoredImage.objects.get_or_create(
            sha256=f"{number:064d}",
            defaults={
                "file": f"images/{number}.png",
                "thumb": f"images/{number}.png",
                "content_type": "image/png",
                "width": 64,
                "height": 48,
                "channels": 3,
                "bytes": 70,
                "phash": "0" * 16,
            },
        )
        Item.objects.create(
            dataset=dataset, image=image, original_path=f"{number}.png", valid_from=1
        )
    return dataset


def _items(dataset) -> list[Item]:
    return list(dataset.items.order_by("id"))


def _open(world, persona, dataset, item_uid, **headers):
    url = reverse("studio_item", args=[dataset.pk, item_uid])
    return world.client(persona).get(url, **headers)


def _config(response) -> dict:
    """What the page hands its scripts, read from the rendered json_script."""
    page = response.content.decode()
    start = page.index('<script id="studio-config" type="application/json">')
    text = page[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(text)


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
def test_who_opens_an_image_of_a_private_dataset_and_who_edits_it(world, persona):
    dataset = _dataset(world)
    item = _items(dataset)[1]
    response = _open(world, persona, dataset, item.uid)
    assert response.status_code == PRIVATE[persona]
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("login"))
    if response.status_code != 200:
        return
    config = _config(response)
    assert config["editable"] is EDITS[persona]
    assert config["may_commit"] is EDITS[persona]
    assert config["item"] == str(item.uid)
    assert config["position"] == 1
    assert config["kind"] == "detection"
    assert [c["name"] for c in config["categories"]] == CLASSES
    assert config["urls"]["changes"] == f"/api/v1/datasets/{dataset.pk}/draft/changes"
    assert config["urls"]["item"] == f"/api/v1/datasets/{dataset.pk}/studio/items/"
    page = response.content.decode()
    assert 'id="studio-canvas"' in page and 'aria-label="Image canvas"' in page
    assert "konva.min.js" in page and "js/studio/page.js" in page
    assert ('data-tool="box"' in page) is EDITS[persona]
    assert ('id="studio-commit-open"' in page) is EDITS[persona]
    assert ("You may look at this image but not change it." in page) is True
    assert ('id="studio-readonly" hidden' in page) is EDITS[persona]


def test_a_student_never_sees_a_hidden_test_sets_images_and_staff_do(world):
    dataset = _dataset(world, owner="teacher", visibility="hidden_test")
    uid = _items(dataset)[0].uid
    assert _open(world, "alice", dataset, uid).status_code == 403  # its summary only
    assert _open(world, "carol", dataset, uid).status_code == 404
    assert _config(_open(world, "ta", dataset, uid))["editable"] is False
    assert _config(_open(world, "teacher", dataset, uid))["editable"] is True


def test_an_image_of_another_dataset_or_no_image_is_not_found(world):
    dataset = _dataset(world)
    other = _dataset(world, owner="bob")
    assert _open(world, "alice", dataset, _items(other)[0].uid).status_code == 404
    assert _open(world, "alice", dataset, uuid.uuid4()).status_code == 404
    not_a_uuid = f"/datasets/{dataset.pk}/studio/not-a-uuid/"
    assert world.client("alice").get(not_a_uuid).status_code == 404
    missing = reverse("studio_item", args=[10**17, _items(dataset)[0].uid])
    assert world.client("alice").get(missing).status_code == 404


def test_a_deleted_image_is_not_found(world):
    dataset = _dataset(world)
    item = _items(dataset)[0]
    Item.objects.filter(pk=item.pk).update(valid_to=1)  # gone from the head
    assert _open(world, "alice", dataset, item.uid).status_code == 404


def test_a_classmate_views_a_shared_dataset_read_only(world):
    dataset = _dataset(world, visibility="shared")
    response = _open(world, "bob", dataset, _items(dataset)[0].uid)
    assert response.status_code == 200
    assert _config(response)["editable"] is False
    page = response.content.decode()
    assert 'id="studio-add-class"' not in page and 'id="studio-draft"' not in page
    assert 'id="studio-readonly" >' in page or 'id="studio-readonly">' in page


def test_nobody_edits_in_an_archived_class(world):
    dataset = _dataset(world)
    world.course.archived_at = timezone.now()
    world.course.save()
    response = _open(world, "alice", dataset, _items(dataset)[0].uid)
    assert response.status_code == 200
    assert _config(response)["editable"] is False


def test_a_pool_student_edits_only_the_images_given_to_them_and_never_commits(world):
    dataset = _dataset(world, owner="teacher", visibility="handout")
    first, second, third = _items(dataset)
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Label shapes", created_by=world.teacher
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=third.uid, student=world.bob)
    response = _open(world, "bob", dataset, third.uid)
    assert response.status_code == 200
    config = _config(response)
    assert config["editable"] is True and config["may_commit"] is False
    assert config["position"] == 0  # the first of the images given to him
    page = response.content.decode()
    assert 'id="studio-commit-open"' not in page and 'id="studio-discard-open"' in page
    assert _open(world, "bob", dataset, first.uid).status_code == 404  # not given to him
    # alice was given nothing: the handout is hers to look at, not to change.
    assert _config(_open(world, "alice", dataset, second.uid))["editable"] is False


def test_the_page_speaks_japanese(world):
    dataset = _dataset(world)
    response = _open(world, "alice", dataset, _items(dataset)[0].uid, HTTP_ACCEPT_LANGUAGE="ja")
    words = _config(response)["words"]
    assert words["tool-box"] == "ボックス"
    assert words["save-offline"].startswith("オフライン")
    assert words["keep-mine"] == "自分の変更を残す"
    page = response.content.decode()
    assert 'aria-label="画像キャンバス"' in page
    assert "バージョンを確定…" in page


def test_the_dataset_page_offers_annotate_to_who_may_see_the_images(world):
    dataset = _dataset(world, owner="teacher", visibility="hidden_test")
    studio = reverse("studio_home", args=[dataset.pk])
    teacher_page = world.client("teacher").get(reverse("dataset_detail", args=[dataset.pk]))
    assert f'href="{studio}"' in teacher_page.content.decode()
    student_page = world.client("alice").get(reverse("dataset_detail", args=[dataset.pk]))
    assert student_page.status_code == 200
    assert f'href="{studio}"' not in student_page.content.decode()
