"""The canvas page's parts for the shape tools: the brush's controls on segmentation images that
may be changed, the keypoint panel on keypoint images, the keypoint names editor only for who
may edit the dataset (never in an archived class, never for a student given the image to
label), each keypoint class's OKS sigmas and the default rule for the editor's σ fields, and the
tools' words in Japanese."""

import pytest
from django.utils import timezone

from tests.unit.test_studio_pages import _config, _dataset, _items, _open
from trainer.keypoint_metrics import COCO_NAMES, default_sigmas
from webapp.datasets.models import Category
from webapp.labelling.models import LabellingAssignment, LabellingTask

pytestmark = pytest.mark.django_db
EDITOR = 'id="kp-editor"'
PANEL = "data-keypoints-panel"
BRUSH = "data-brush-controls"


def _page(world, persona, dataset, item=None, **headers) -> str:
    response = _open(world, persona, dataset, item or _items(dataset)[0].uid, **headers)
    assert response.status_code == 200
    return response.content.decode()


# alice's shared keypoint dataset: she and the class's teachers edit; classmates and the TA look.
EDITOR_SHOWN = {"alice": True, "teacher": True, "ta": False, "bob": False}


@pytest.mark.parametrize("persona", EDITOR_SHOWN)
def test_only_who_may_edit_the_dataset_gets_the_keypoint_names_editor(world, persona):
    dataset = _dataset(world, kind="keypoints", visibility="shared")
    page = _page(world, persona, dataset)
    assert (EDITOR in page) is EDITOR_SHOWN[persona]
    assert (PANEL in page) is EDITOR_SHOWN[persona]  # the placing panel: for who may draft
    assert BRUSH not in page


def test_no_keypoint_names_editor_in_an_archived_class(world):
    dataset = _dataset(world, kind="keypoints")
    world.course.archived_at = timezone.now()
    world.course.save()
    page = _page(world, "alice", dataset)
    assert EDITOR not in page and PANEL not in page


def test_a_student_labelling_a_pool_places_keypoints_but_does_not_rename_them(world):
    dataset = _dataset(world, owner="teacher", kind="keypoints", visibility="handout")
    item = _items(dataset)[0]
    assignment = LabellingAssignment.objects.create(
        course=world.course, dataset=dataset, title="Poses", created_by=world.teacher
    )
    LabellingTask.objects.create(assignment=assignment, item_uid=item.uid, student=world.bob)
    page = _page(world, "bob", dataset, item.uid)
    assert PANEL in page and EDITOR not in page


@pytest.mark.parametrize(("persona", "shown"), [("alice", True), ("bob", False)])
def test_the_brush_controls_are_for_segmentation_images_that_may_change(world, persona, shown):
    dataset = _dataset(world, kind="segmentation", visibility="shared")
    page = _page(world, persona, dataset)
    assert (BRUSH in page) is shown
    assert EDITOR not in page and PANEL not in page


def test_the_shape_tools_speak_japanese(world):
    dataset = _dataset(world, kind="keypoints")
    response = _open(world, "alice", dataset, _items(dataset)[0].uid, HTTP_ACCEPT_LANGUAGE="ja")
    words = _config(response)["words"]
    assert words["kp-next"] == "次：%(name)s"
    assert words["kp-occluded"] == "隠れている"
    assert words["close-polygon"].startswith("ポリゴンを閉じる")
    assert words["keyname-Alt+click"] == "Alt + クリック"
    page = response.content.decode()
    assert "キーポイントの名前と骨格を編集" in page


def test_the_keypoint_editor_gets_each_class_own_sigmas_and_the_default_rule(world):
    dataset = _dataset(world, kind="keypoints")
    Category.objects.filter(dataset=dataset, index=0).update(
        keypoints=["head", "tail"], sigmas=[0.02, 0.3]
    )
    Category.objects.filter(dataset=dataset, index=1).update(keypoints=COCO_NAMES)  # no own
    config = _config(_open(world, "alice", dataset, _items(dataset)[0].uid))
    by_index = {row["index"]: row for row in config["categories"]}
    assert by_index[0]["sigmas"] == [0.02, 0.3]
    assert by_index[1]["sigmas"] == []
    # The rule the editor applies to the names it edits gives the trainer's defaults.
    rule = config["oks_defaults"]
    assert rule["coco_names"] == COCO_NAMES
    assert rule["coco_sigmas"] == default_sigmas(COCO_NAMES)
    assert rule["coco_sigmas"][1] == 0.025 and rule["coco_sigmas"][11] == 0.107  # eye, hip
    assert [rule["sigma"]] * 2 == default_sigmas(["head", "tail"])


def test_only_keypoint_datasets_carry_the_sigma_rule(world):
    dataset = _dataset(world, kind="detection")
    config = _config(_open(world, "alice", dataset, _items(dataset)[0].uid))
    assert "oks_defaults" not in config


def test_the_sigma_fields_speak_japanese(world):
    dataset = _dataset(world, kind="keypoints")
    response = _open(world, "alice", dataset, _items(dataset)[0].uid, HTTP_ACCEPT_LANGUAGE="ja")
    assert _config(response)["words"]["kp-sigma-bad"].startswith("点 %(n)s（%(name)s）：OKS σ は")
    page = response.content.decode()
    assert 'data-word-sigma="点の OKS σ"' in page
    assert 'id="kp-editor-sigma-help"' in page and "目は小さく（0.025）" in page
