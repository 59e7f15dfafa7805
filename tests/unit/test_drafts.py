"""The studio's drafts: deltas into one person's draft, conflicts, commits as versions, the API.

Datasets here are made row by row (no image files: nothing below serves pixels), so that each
test is about the rules and runs in milliseconds.
"""

import uuid

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.conftest import assert_api_error, ready_dataset
from webapp.datasets import drafts
from webapp.datasets.models import (
    Annotation,
    Category,
    Dataset,
    Draft,
    Item,
    at_version,
)
from webapp.labelling.models import LabellingAssignment, LabellingTask

URL = "/api/v1/datasets/{}/"


def tiny(world, kind="detection", owner="alice", images=3, visibility="private") -> Dataset:
    """A ready dataset at version 1 (tests.conftest.ready_dataset); keypoint classes have three
    named points and a skeleton."""
    names = ("head", "hand", "foot") if kind == "keypoints" else ()
    return ready_dataset(
        world.course, world.user(owner), kind=kind, images=images, visibility=visibility,
        keypoints=names, skeleton=((1, 2), (2, 3)) if names else (),
    )  # fmt: skip


def uids(dataset: Dataset) -> list[str]:
    return [str(u) for u in dataset.items.order_by("id").values_list("uid", flat=True)]


def box(item: str, bbox=(30, 30, 10, 10), category=1, uid=None) -> dict:
    return {
        "op": "create",
        "item": item,
        "uid": uid or str(uuid.uuid4()),
        "data": {"category": category, "bbox": list(bbox)},
    }


def post(world, persona, dataset, changes, path="draft/changes"):
    return world.client(persona).post(
        URL.format(dataset.pk) + path, {"changes": changes}, content_type="application/json"
    )


def view(world, persona, dataset, item, version=None):
    query = f"?version={version}" if version else ""
    return world.client(persona).get(URL.format(dataset.pk) + f"studio/items/{item}{query}")


# --- deltas and the draft view -------------------------------------------------------------


def test_a_delta_goes_to_the_draft_and_the_head_version_stays(world):
    dataset = tiny(world)
    first = uids(dataset)[0]
    change = box(first)
    answer = post(world, "alice", dataset, [change])
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["applied"] == [change["uid"]] and not body["refused"] and not body["conflicts"]
    assert body["draft"] == {"base": 1, "head": 1, "changes": 1}
    shown = view(world, "alice", dataset, first).json()
    assert shown["version"] is None and shown["editable"] is True
    boxes = {a["uid"]: a for a in shown["annotations"]}
    assert boxes[change["uid"]]["bbox"] == [30, 30, 10, 10]
    assert boxes[change["uid"]]["area"] == 100 and boxes[change["uid"]]["revision"] == 0
    assert len(boxes) == 2  # the committed cat box too
    at_one = view(world, "alice", dataset, first, version=1).json()
    assert [a["bbox"] for a in at_one["annotations"]] == [[10, 10, 20, 20]]
    assert dataset.versions.count() == 1


def test_sending_the_same_change_again_is_harmless(world):
    dataset = tiny(world)
    change = box(uids(dataset)[1])
    for _ in range(3):
        assert post(world, "alice", dataset, [change]).status_code == 200
    assert Draft.objects.get(dataset=dataset).changes.count() == 1


def test_good_changes_are_kept_when_others_in_the_batch_are_refused(world):
    dataset = tiny(world)
    first = uids(dataset)[0]
    good = box(first)
    outside = box(first, bbox=(500, 500, 10, 10))
    no_class = box(first, category=7)
    answer = post(world, "alice", dataset, [outside, good, no_class]).json()
    assert answer["applied"] == [good["uid"]]
    refused = {(r["index"], r["field"]) for r in answer["refused"]}
    assert refused == {(0, "bbox"), (2, "category")}
    assert all(r["detail"] for r in answer["refused"])


def test_update_delete_and_undo_of_a_create(world):
    dataset = tiny(world)
    first = uids(dataset)[0]
    committed = str(Annotation.objects.get(item__dataset=dataset).uid)
    new = box(first)
    post(world, "alice", dataset, [new])
    moved = {
        "op": "update",
        "item": first,
        "uid": committed,
        "revision": 1,
        "data": {"category": 1, "bbox": [0, 0, 50, 40]},
    }
    post(
        world,
        "alice",
        dataset,
        [moved, {"op": "delete", "item": first, "uid": new["uid"], "revision": 0}],
    )
    shown = view(world, "alice", dataset, first).json()["annotations"]
    assert [(a["uid"], a["bbox"], a["category"]) for a in shown] == [(committed, [0, 0, 50, 40], 1)]
    # the deleted create left nothing behind; the update is one row
    assert Draft.objects.get(dataset=dataset).changes.count() == 1


def test_polygons_and_brush_masks_get_their_area_and_box(world):
    dataset = tiny(world, kind="segmentation")
    second = uids(dataset)[1]
    polygon = {
        "op": "create",
        "item": second,
        "uid": str(uuid.uuid4()),
        "data": {"category": 0, "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
    }
    pixels = np.zeros((80, 100), dtype=np.uint8, order="F")
    pixels[40:50, 60:80] = 1  # 10 rows × 20 columns = 200 pixels
    rle = mask_utils.encode(pixels)
    mask = {
        "op": "create",
        "item": second,
        "uid": str(uuid.uuid4()),
        "data": {
            "category": 1,
            "segmentation": {"size": [80, 100], "counts": rle["counts"].decode()},
        },
    }
    wrong_size = {
        **mask,
        "uid": str(uuid.uuid4()),
        "data": {"category": 1, "segmentation": {"size": [10, 10], "counts": "abc"}},
    }
    answer = post(world, "alice", dataset, [polygon, mask, wrong_size]).json()
    assert len(answer["applied"]) == 2 and answer["refused"][0]["field"] == "segmentation"
    shown = {a["uid"]: a for a in view(world, "alice", dataset, second).json()["annotations"]}
    assert shown[polygon["uid"]]["bbox"] == [10, 10, 20, 10]
    assert shown[polygon["uid"]]["area"] == pytest.approx(200, abs=25)
    assert shown[mask["uid"]]["area"] == 200 and shown[mask["uid"]]["bbox"] == [60, 40, 20, 10]


def test_keypoints_must_match_the_class_and_fill_the_box(world):
    dataset = tiny(world, kind="keypoints")
    second = uids(dataset)[1]
    person = {
        "op": "create",
        "item": second,
        "uid": str(uuid.uuid4()),
        "data": {"category": 0, "keypoints": [10, 10, 2, 30, 40, 1, 0, 0, 0]},
    }
    short = {**person, "uid": str(uuid.uuid4()), "data": {"category": 0, "keypoints": [1, 2, 2]}}
    bad_v = {
        **person,
        "uid": str(uuid.uuid4()),
        "data": {"category": 0, "keypoints": [1, 2, 5, 1, 1, 1, 1, 1, 1]},
    }
    answer = post(world, "alice", dataset, [person, short, bad_v]).json()
    assert answer["applied"] == [person["uid"]]
    assert [r["field"] for r in answer["refused"]] == ["keypoints", "keypoints"]
    shown = {a["uid"]: a for a in view(world, "alice", dataset, second).json()["annotations"]}
    assert shown[person["uid"]]["bbox"] == [10, 10, 20, 30]


def test_a_new_class_gets_the_next_index_and_can_be_used_at_once(world):
    dataset = tiny(world)
    first = uids(dataset)[0]
    made = str(uuid.uuid4())
    answer = post(world, "alice", dataset, [{"op": "category", "uid": made, "name": "bird"}])
    names = {c["name"]: c["index"] for c in answer.json()["categories"]}
    assert names == {"cat": 0, "dog": 1, "bird": 2}
    assert post(world, "alice", dataset, [box(first, category=2)]).json()["refused"] == []
    version = drafts.commit(dataset, world.alice, "birds")
    assert dict(
        Category.objects.filter(at_version(version.number), dataset=dataset).values_list(
            "name", "index"
        )
    ) == {"cat": 0, "dog": 1, "bird": 2}


# --- commits -------------------------------------------------------------------------------


def test_commit_makes_one_version_keeps_uids_and_bumps_revisions(world):
    dataset = tiny(world)
    first, second = uids(dataset)[:2]
    committed = Annotation.objects.get(item__dataset=dataset)
    new = box(second)
    post(
        world,
        "alice",
        dataset,
        [
            new,
            {
                "op": "update",
                "item": first,
                "uid": str(committed.uid),
                "revision": 1,
                "data": {"category": 0, "bbox": [5, 5, 10, 10]},
            },
        ],
    )
    answer = world.client("alice").post(
        URL.format(dataset.pk) + "draft/commit",
        {"message": "two boxes"},
        content_type="application/json",
    )
    assert answer.status_code == 201 and answer.json() == {"version": 2}
    dataset.refresh_from_db()
    assert dataset.head == 2 and dataset.versions.get(number=2).summary == "two boxes"
    at_two = {
        str(a.uid): a
        for a in Annotation.objects.filter(
            item__in=Item.objects.filter(at_version(2), dataset=dataset)
        )
    }
    assert at_two[str(committed.uid)].bbox == [5, 5, 10, 10]
    assert at_two[str(committed.uid)].revision == 2
    assert at_two[new["uid"]].revision == 1
    # version 1 is exactly as it was; item uids are the same in both versions
    at_one = Annotation.objects.filter(item__in=Item.objects.filter(at_version(1), dataset=dataset))
    assert [(str(a.uid), a.bbox, a.revision) for a in at_one] == [
        (str(committed.uid), [10, 10, 20, 20], 1)
    ]
    assert set(
        Item.objects.filter(at_version(2), dataset=dataset).values_list("uid", flat=True)
    ) == set(Item.objects.filter(at_version(1), dataset=dataset).values_list("uid", flat=True))
    assert not Draft.objects.filter(dataset=dataset).exists()  # emptied by the commit


def test_an_empty_draft_commits_nothing(world):
    dataset = tiny(world)
    answer = world.client("alice").post(
        URL.format(dataset.pk) + "draft/commit", {}, content_type="application/json"
    )
    assert_api_error(answer, 409)
    assert Dataset.objects.get(pk=dataset.pk).head == 1


def test_classification_labels_commit_and_queues_put_unlabelled_first(world):
    dataset = tiny(world, kind="classification", images=4)
    keys = uids(dataset)
    queue = world.client("alice").get(URL.format(dataset.pk) + "studio/items?queue=unlabelled")
    assert [i["uid"] for i in queue.json()["items"]] == keys[1:] + keys[:1]
    post(world, "alice", dataset, [{"op": "label", "item": keys[1], "category": 1}])
    queue = world.client("alice").get(URL.format(dataset.pk) + "studio/items?queue=unlabelled")
    assert [i["uid"] for i in queue.json()["items"]][:2] == keys[2:4]
    assert queue.json()["items"][-1]["category"] == 1 or queue.json()["items"][-2]["category"] == 1
    drafts.commit(dataset, world.alice, "labels")
    assert Item.objects.get(dataset=dataset, uid=keys[1], valid_to=None).category_index == 1


def test_queue_pages_are_bounded(world):
    dataset = tiny(world, kind="classification", images=5)
    page = world.client("alice").get(URL.format(dataset.pk) + "studio/items?limit=2&offset=2")
    body = page.json()
    assert [i["uid"] for i in body["items"]] == uids(dataset)[2:4]
    assert body["total"] == 5 and body["next"] == 4
    assert_api_error(
        world.client("alice").get(URL.format(dataset.pk) + "studio/items?limit=201"), 422
    )


# --- conflicts -----------------------------------------------------------------------------


def test_two_people_editing_one_box_get_a_conflict_and_neither_loses_work(world):
    dataset = tiny(world)  # alice's; her teacher may edit it too
    first = uids(dataset)[0]
    committed = str(Annotation.objects.get(item__dataset=dataset).uid)
    alice_edit = {
        "op": "update",
        "item": first,
        "uid": committed,
        "revision": 1,
        "data": {"category": 0, "bbox": [1, 1, 5, 5]},
    }
    teacher_edit = {**alice_edit, "data": {"category": 1, "bbox": [50, 50, 5, 5]}}
    post(world, "alice", dataset, [alice_edit])
    post(world, "teacher", dataset, [teacher_edit])
    seen = view(world, "teacher", dataset, first).json()
    assert seen["others_editing"] == ["alice"]
    drafts.commit(dataset, world.alice, "alice first")
    # the teacher's commit is refused with both sides, and the teacher's change is still there
    refused = world.client("teacher").post(
        URL.format(dataset.pk) + "draft/commit", {}, content_type="application/json"
    )
    assert refused.status_code == 409
    conflict = refused.json()["conflicts"][0]
    assert conflict["by"] == "alice"  # who committed their side
    assert conflict["theirs"]["bbox"] == [1, 1, 5, 5] and conflict["yours"]["bbox"] == [
        50,
        50,
        5,
        5,
    ]
    # a further save on the old revision says so too
    again = post(world, "teacher", dataset, [teacher_edit]).json()
    assert again["conflicts"] and again["conflicts"][0]["theirs"]["revision"] == 2
    kept = world.client("teacher").post(
        URL.format(dataset.pk) + "draft/resolve",
        {"uid": committed, "keep": "mine"},
        content_type="application/json",
    )
    assert kept.status_code == 200
    assert kept.json()["annotation"]["bbox"] == [50, 50, 5, 5]
    assert kept.json()["annotation"]["revision"] == 2  # now made on their revision
    version = drafts.commit(dataset, world.teacher, "mine after all")
    final = Annotation.objects.get(item__dataset=dataset, item__valid_from=version.number)
    assert final.bbox == [50, 50, 5, 5] and final.revision == 3


# --- proposals -----------------------------------------------------------------------------


def test_proposals_are_shown_but_not_committed_until_accepted(world):
    dataset = tiny(world)
    first, second = uids(dataset)[:2]
    written = drafts.write_proposals(
        dataset,
        world.alice,
        7,
        [
            {"item": second, "category": 1, "bbox": [1, 1, 10, 10], "score": 0.9},
            {"item": second, "category": 0, "bbox": [40, 40, 10, 10], "score": 0.3},
            {"item": first, "category": 9, "bbox": [1, 1, 10, 10], "score": 0.9},  # no such class
        ],
    )
    assert written == 2
    shown = view(world, "alice", dataset, second).json()["annotations"]
    assert sorted(a["proposal"]["score"] for a in shown) == [0.3, 0.9]
    queue = world.client("alice").get(URL.format(dataset.pk) + "studio/items?queue=least_confident")
    assert queue.json()["items"][0]["uid"] == second
    assert drafts.accept_above(dataset, world.alice, 0.5) == 1
    post(world, "alice", dataset, [box(first)])
    version = drafts.commit(dataset, world.alice, "accepted")
    committed = Annotation.objects.filter(item__dataset=dataset, item__valid_from=version.number)
    assert sorted(tuple(a.bbox) for a in committed if str(a.item.uid) == second) == [(1, 1, 10, 10)]
    left = Draft.objects.get(dataset=dataset).changes.get()
    assert left.data["proposal"]["score"] == 0.3  # still waiting for a decision
    assert drafts.reject_below(dataset, world.alice, 0.5) == 1


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("alice", 200),
        ("teacher", 200),
        ("bob", 404),
        ("carol", 404),
        ("other_teacher", 404),
        ("anon", 401),
    ],
)
def test_who_may_save_into_a_private_dataset(world, persona, status):
    dataset = tiny(world)
    answer = post(world, persona, dataset, [box(uids(dataset)[0])])
    assert answer.status_code == status
    if status != 200:
        assert not Draft.objects.exists()


def test_a_classmate_sees_a_shared_dataset_read_only(world):
    dataset = tiny(world, visibility="shared")
    first = uids(dataset)[0]
    assert view(world, "bob", dataset, first).json()["editable"] is False
    assert_api_error(post(world, "bob", dataset, [box(first)]), 403)
    commit = world.client("bob").post(
        URL.format(dataset.pk) + "draft/commit", {}, content_type="application/json"
    )
    assert_api_error(commit, 403)


def test_a_hidden_test_set_never_opens_for_a_student(world):
    dataset = tiny(world, owner="teacher", visibility="hidden_test")
    assert view(world, "alice", dataset, uids(dataset)[0]).status_code == 404
    assert view(world, "ta", dataset, uids(dataset)[0]).status_code == 200


def test_a_labelling_student_drafts_only_the_images_given_to_them(world):
    dataset = tiny(world, owner="teacher", visibility="private", images=3)
    keys = uids(dataset)
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Label", per_image=1
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=keys[1], student=world.bob)
    queue = world.client("bob").get(URL.format(dataset.pk) + "studio/items")
    assert [i["uid"] for i in queue.json()["items"]] == [keys[1]]
    assert view(world, "bob", dataset, keys[0]).status_code == 404
    answer = post(world, "bob", dataset, [box(keys[1]), box(keys[0])]).json()
    assert len(answer["applied"]) == 1 and answer["refused"][0]["field"] == "item"
    bob_draft = Draft.objects.get(dataset=dataset, user=world.bob)
    assert drafts.annotations_of(bob_draft, [keys[1]])[keys[1]][-1]["bbox"] == [30, 30, 10, 10]
    # bob's labels are his submission: he may not commit them into the teacher's dataset
    commit = world.client("bob").post(
        URL.format(dataset.pk) + "draft/commit", {}, content_type="application/json"
    )
    assert_api_error(commit, 403)
    assert view(world, "alice", dataset, keys[1]).status_code == 404  # not hers, not shared


def test_keypoint_names_change_as_a_version_and_skeletons_follow_by_name(world):
    dataset = tiny(world, kind="keypoints")
    second = uids(dataset)[1]
    post(
        world,
        "alice",
        dataset,
        [
            {
                "op": "create",
                "item": second,
                "uid": str(uuid.uuid4()),
                "data": {"category": 0, "keypoints": [10, 10, 2, 20, 20, 2, 30, 30, 1]},
            }
        ],
    )
    drafts.commit(dataset, world.alice, "a person")
    answer = world.client("alice").put(
        URL.format(dataset.pk) + "categories/0/keypoints",
        {"keypoints": ["foot", "head", "tail"], "skeleton": [[1, 2], [2, 3]]},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    dataset.refresh_from_db()
    assert dataset.head == 3
    person = Annotation.objects.get(
        item__dataset=dataset, item__valid_to=None, keypoints__isnull=False
    )
    assert person.keypoints == [30, 30, 1, 10, 10, 2, 0, 0, 0]
    bad = world.client("alice").put(
        URL.format(dataset.pk) + "categories/0/keypoints",
        {"keypoints": ["a", "a"], "skeleton": []},
        content_type="application/json",
    )
    assert assert_api_error(bad, 400)["errors"]["keypoints"]
    other = world.client("bob").put(
        URL.format(dataset.pk) + "categories/0/keypoints",
        {"keypoints": ["x"]},
        content_type="application/json",
    )
    assert other.status_code == 404


def test_the_queue_keeps_its_order_after_a_commit_copies_rows(world):
    dataset = tiny(world, images=4)
    before = world.client("alice").get(URL.format(dataset.pk) + "studio/items").json()
    first = before["items"][0]["uid"]
    post(world, "alice", dataset, [box(first)])
    drafts.commit(dataset, world.alice, "first image edited")
    after = world.client("alice").get(URL.format(dataset.pk) + "studio/items").json()
    assert [i["uid"] for i in after["items"]] == [i["uid"] for i in before["items"]]
    assert after["items"][0]["id"] != before["items"][0]["id"]  # a new row, the same image


def test_a_label_saved_over_a_newer_committed_class_is_reported_at_once(world):
    dataset = tiny(world, kind="classification")
    second = uids(dataset)[1]
    post(world, "alice", dataset, [{"op": "label", "item": second, "category": 0}])
    post(world, "teacher", dataset, [{"op": "label", "item": second, "category": 1}])
    drafts.commit(dataset, world.teacher, "the teacher's class")
    again = post(world, "alice", dataset, [{"op": "label", "item": second, "category": 0}])
    conflict = again.json()["conflicts"][0]
    assert conflict["theirs"] == {"category": 1} and conflict["yours"] == {"category": 0}
    assert conflict["by"] == "Sato Sensei"


def test_a_renamed_keypoint_keeps_its_place_and_drafts_follow_a_new_schema(world):
    dataset = tiny(world, kind="keypoints")
    second, third = uids(dataset)[1:3]
    post(world, "alice", dataset, [
        {"op": "create", "item": second, "uid": str(uuid.uuid4()),
         "data": {"category": 0, "keypoints": [10, 10, 2, 20, 20, 2, 30, 30, 1]}},
    ])  # fmt: skip
    drafts.commit(dataset, world.alice, "a person")
    waiting = str(uuid.uuid4())
    post(world, "alice", dataset, [
        {"op": "create", "item": third, "uid": waiting,
         "data": {"category": 0, "keypoints": [1, 1, 2, 2, 2, 2, 3, 3, 2]}},
    ])  # fmt: skip
    answer = world.client("alice").put(
        URL.format(dataset.pk) + "categories/0/keypoints",
        {"keypoints": ["skull", "tail", "hand"], "skeleton": [[1, 3]], "sources": [1, None, 2]},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    person = Annotation.objects.get(
        item__dataset=dataset, item__valid_to=None, keypoints__isnull=False
    )
    assert person.keypoints == [10, 10, 2, 0, 0, 0, 20, 20, 2]  # head renamed skull: kept
    shown = view(world, "alice", dataset, third).json()["annotations"]
    assert shown[0]["keypoints"] == [1, 1, 2, 0, 0, 0, 2, 2, 2]  # the draft's skeleton too
    bad = world.client("alice").put(
        URL.format(dataset.pk) + "categories/0/keypoints",
        {"keypoints": ["a", "b"], "skeleton": [], "sources": [1, 1]},
        content_type="application/json",
    )
    assert assert_api_error(bad, 400)["errors"]["sources"]


def test_a_private_pools_pixels_are_served_to_a_student_only_for_her_images(world, monkeypatch):
    from django.http import HttpResponse

    from webapp.datasets import views

    monkeypatch.setattr(views, "_serve", lambda *args, **kwargs: HttpResponse(b"pixels"))
    dataset = tiny(world, owner="teacher", visibility="private")
    given, other = dataset.items.order_by("id")[:2]
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Label", per_image=1
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=given.uid, student=world.bob)
    for kind in ("image", "thumb"):
        url = f"/datasets/{dataset.pk}/items/{{}}/{kind}"
        assert world.client("bob").get(url.format(given.pk)).status_code == 200
        assert world.client("bob").get(url.format(other.pk)).status_code == 404
        assert world.client("alice").get(url.format(given.pk)).status_code == 404
        assert world.client("carol").get(url.format(given.pk)).status_code == 404
        assert world.client("teacher").get(url.format(other.pk)).status_code == 200
