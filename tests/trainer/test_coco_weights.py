"""`transfer.source: "coco"`: torchvision's COCO weights of a detector, segmenter, Mask R-CNN or
Keypoint R-CNN, read from $TORCH_HOME/hub/checkpoints only (never downloaded), backbone and neck
kept, the per-class layers new for the dataset.

Each COCO file here is a state dict of torchvision's own model built without weights, saved
under torchvision's file name: what the builders read is then known tensor by tensor. The
ResNet-50 models take a few seconds each to build."""

import socket
from types import SimpleNamespace

import pytest
import torch

from trainer import catalog, registry
from trainer.loops import detection as detection_loop
from trainer.loops import segmentation as segmentation_loop
from trainer.models import WeightsUnavailable
from trainer.models import tv_detectors as tvd
from trainer.models import tv_keypoints as tvk
from trainer.models import tv_segmentation as tvs
from trainer.spec import SpecError, Transfer, load_spec

SIZE = 64
CLASSES = 3
COCO_MODELS = [*tvd.RECIPES, *tvs.SEMANTIC, tvs.MASK_RCNN.name, tvk.NAME]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """An empty torch cache of this test's own, and no way out: torchvision's download
    functions and any connection fail the test."""
    import torchvision.models._api as api

    def refuse(*args, **kwargs):
        raise AssertionError(f"the network was touched: {args[:2]}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)  # Weights.get_state_dict's
    folder = catalog.checkpoints_dir()
    folder.mkdir(parents=True)
    assert folder == tvd._checkpoints()  # the catalog and torch.hub agree on the folder
    return folder


def _coco_file(name: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`model`'s state dict saved as `name`'s COCO file; the state dict."""
    state = model.state_dict()
    torch.save(state, catalog.checkpoints_dir() / catalog.get(name).coco_weights_file)
    return state


# --- the catalog ---------------------------------------------------------------------------------


def test_the_catalog_names_torchvisions_coco_file_of_each_model():
    from torchvision.models import detection, segmentation

    expected = {name: tvd.weights_files(name)["coco"][0] for name in tvd.RECIPES}
    for name, recipe in [*tvs.SEMANTIC.items(), (tvs.MASK_RCNN.name, tvs.MASK_RCNN)]:
        enum, member = recipe.coco_weights.split(".")
        module = detection if recipe is tvs.MASK_RCNN else segmentation
        expected[name] = getattr(getattr(module, enum), member).url.rsplit("/", 1)[-1]
    expected[tvk.NAME] = detection.KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.url.rsplit("/")[-1]
    assert expected["deeplabv3_resnet50"] == "deeplabv3_resnet50_coco-cd0a2569.pth"
    assert expected["fasterrcnn_resnet50_fpn"].startswith("fasterrcnn_resnet50_fpn_v2_coco-")
    for name, file in expected.items():
        assert catalog.get(name).coco_weights_file == file, name
        assert catalog.get(name).supports_coco
    others = [e for e in catalog.models() if e.name not in expected]
    assert others and not any(entry.supports_coco for entry in others)  # classifiers, presets


def test_coco_weights_are_available_only_when_their_file_is_there(offline):
    entry = catalog.get("maskrcnn_resnet50_fpn")
    assert not catalog.weights_available(entry, "coco")
    (offline / entry.weights_file).write_bytes(b"x")  # ImageNet's file is not COCO's
    assert catalog.weights_available(entry) and not catalog.weights_available(entry, "coco")
    (offline / entry.coco_weights_file).write_bytes(b"x")
    assert catalog.weights_available(entry, "coco")
    assert not catalog.weights_available(catalog.get("resnet18"), "coco")


# --- absent files --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COCO_MODELS)
def test_absent_coco_weights_name_the_file_and_nothing_is_downloaded(name):
    with pytest.raises(WeightsUnavailable, match="never downloads") as refused:
        registry.build(name, num_classes=2, in_channels=3, input_size=SIZE, pretrained="coco")
    assert catalog.get(name).coco_weights_file in str(refused.value)
    assert "COCO" in str(refused.value)


def test_a_model_without_coco_weights_is_refused_before_building():
    with pytest.raises(ValueError, match="no COCO weights"):
        registry.build("resnet18", num_classes=2, in_channels=3, input_size=32, pretrained="coco")
    with pytest.raises(ValueError, match="pretrained must be"):
        registry.build("fcn_resnet50", num_classes=2, in_channels=3, input_size=SIZE,
                       pretrained="voc")  # fmt: skip


# --- loading -------------------------------------------------------------------------------------


def test_a_semantic_segmenter_starts_from_coco_with_a_head_for_the_dataset():
    from torchvision.models import segmentation

    name = "lraspp_mobilenet_v3_large"
    coco = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                  num_classes=21)  # fmt: skip
    theirs = _coco_file(name, coco)
    model = registry.build(name, num_classes=CLASSES, in_channels=3, input_size=SIZE,
                           pretrained="coco")  # fmt: skip
    ours = model.state_dict()
    scratch = registry.build(name, num_classes=CLASSES, in_channels=3, input_size=SIZE)
    assert set(ours) == set(scratch.state_dict())  # the same model as from scratch
    class_keys = set(model.class_keys())
    for key, value in ours.items():
        if key in class_keys:  # the per-class layers: one row per class and the background
            assert value.shape[0] == CLASSES + 1
        else:  # backbone, neck and the rest of the head: COCO's
            assert torch.equal(value, theirs[key[len("model.") :]]), key
    assert model(torch.randn(2, 3, SIZE, SIZE)).shape == (2, CLASSES + 1, SIZE, SIZE)
    assert model.weights_mean_std == tvs.IMAGENET_MEAN_STD


@pytest.mark.slow
def test_deeplab_drops_cocos_auxiliary_head():
    from torchvision.models import segmentation

    name = "deeplabv3_mobilenet_v3_large"
    coco = segmentation.deeplabv3_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    theirs = _coco_file(name, coco)
    model = registry.build(name, num_classes=CLASSES, in_channels=3, input_size=SIZE,
                           pretrained="coco")  # fmt: skip
    assert model.model.aux_classifier is None
    ours = model.state_dict()
    assert not any(".aux_classifier." in key for key in ours)
    assert torch.equal(ours["model.classifier.0.convs.0.0.weight"],
                       theirs["classifier.0.convs.0.0.weight"])  # ASPP: kept  # fmt: skip
    assert ours["model.classifier.4.weight"].shape[0] == CLASSES + 1


@pytest.mark.slow
def test_mask_rcnn_starts_from_coco_with_class_layers_for_the_dataset():
    from torchvision.models import detection

    coco = detection.maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    theirs = _coco_file(tvs.MASK_RCNN.name, coco)
    model = registry.build(tvs.MASK_RCNN.name, num_classes=CLASSES, in_channels=3,
                           input_size=SIZE, pretrained="coco")  # fmt: skip
    ours = model.state_dict()
    class_keys = set(model.class_keys())
    for key in class_keys:  # background first; the box regressor has 4 rows per class
        rows = 4 if ".bbox_pred." in key else 1
        assert ours[key].shape[0] == (CLASSES + 1) * rows, key
    kept = [key for key in ours if key not in class_keys]
    assert any(".backbone.body." in k for k in kept) and any(".backbone.fpn." in k for k in kept)
    assert any(".mask_predictor.conv5_mask." in key for key in kept)  # not per class: kept
    for key in kept:
        assert torch.equal(ours[key], theirs[key[len("model.") :]]), key
    model.train()
    images = torch.randn(2, 3, SIZE, SIZE)
    mask = torch.zeros(1, SIZE, SIZE, dtype=torch.uint8)
    mask[0, 8:40, 8:40] = 1
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([2]),
              "masks": mask}  # fmt: skip
    assert torch.isfinite(model.losses(images, [target, target])["loss"])
    found = model.segment(images, score_threshold=0.0, max_detections=5)
    assert all(label < CLASSES for one in found for label in one["labels"].tolist())


@pytest.mark.slow
def test_keypoint_rcnn_starts_from_coco_with_a_predictor_for_the_datasets_keypoints():
    from torchvision.models import detection

    coco = detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, num_keypoints=tvk.COCO_KEYPOINTS
    )
    theirs = _coco_file(tvk.NAME, coco)
    count = 9  # the stick figures' keypoints
    model = registry.build(tvk.NAME, num_classes=count, in_channels=3, input_size=SIZE,
                           pretrained="coco")  # fmt: skip
    ours = model.state_dict()
    per_keypoint = model.keypoint_keys()
    for key, dimension in per_keypoint.items():
        assert ours[key].shape[dimension] == count
    for key, value in ours.items():
        if key not in per_keypoint and not key.startswith("model.transform"):
            # backbone, FPN, proposals, the person box head and the keypoint head's convs
            assert torch.equal(value, theirs[key[len("model.") :]]), key
    # Even 17 keypoints get a new predictor: they need not be COCO's, in COCO's order.
    seventeen = registry.build(tvk.NAME, num_classes=tvk.COCO_KEYPOINTS, in_channels=3,
                               input_size=SIZE, pretrained="coco")  # fmt: skip
    key = f"{tvk.PREDICTOR}.weight"
    assert not torch.equal(seventeen.state_dict()[key], theirs[key[len("model.") :]])


def test_a_detector_starts_from_coco_through_the_registry():
    from torchvision.models import detection

    name = "ssdlite320_mobilenet_v3_large"
    coco = detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                   num_classes=91)  # fmt: skip
    theirs = _coco_file(name, coco)
    model = registry.build(name, num_classes=CLASSES, in_channels=3, input_size=SIZE,
                           pretrained="coco")  # fmt: skip
    ours = model.state_dict()
    key = "model.backbone.features.0.0.0.weight"
    assert torch.equal(ours[key], theirs[key[len("model.") :]])
    for key in model.class_keys():  # per anchor: our classes and the background
        assert ours[key].shape[0] == theirs[key[len("model.") :]].shape[0] // 91 * (CLASSES + 1)


# --- the loops pass the source through -----------------------------------------------------------


def _prepared(model: str, source: str, classes: int = CLASSES, **extra):
    spec = SimpleNamespace(
        model=model,
        transfer=Transfer(source=source, mode="feature_extraction"),
        build_options=dict,
    )
    return SimpleNamespace(
        spec=spec, device=torch.device("cpu"), size=SIZE, channels=3,
        classes=[str(i) for i in range(classes)], mean=[0.0] * 3, std=[1.0] * 3, extra=extra,
    )  # fmt: skip


def test_the_detection_and_segmentation_loops_build_from_coco():
    from torchvision.models import detection, segmentation

    _coco_file("ssdlite320_mobilenet_v3_large", detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=91))  # fmt: skip
    p = _prepared("ssdlite320_mobilenet_v3_large", "coco")
    model = detection_loop.build_model(p)  # type: ignore[arg-type]
    assert p.extra["head"]["head"] == "new"
    assert p.mean == [0.5, 0.5, 0.5]  # SSDlite's COCO weights expect [-1, 1]
    frozen = {id(q) for q in model.parameters() if not q.requires_grad}
    assert frozen and all(id(q) not in frozen for q in model.head_parameters())

    theirs = _coco_file("lraspp_mobilenet_v3_large", segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=21))  # fmt: skip
    p = _prepared("lraspp_mobilenet_v3_large", "coco")
    model = segmentation_loop.build_model(p)  # type: ignore[arg-type]
    assert p.extra["head"]["head"] == "new" and p.mean == list(tvs.IMAGENET_MEAN_STD[0])
    stem = "backbone.0.0.weight"
    assert torch.equal(model.state_dict()[f"model.{stem}"], theirs[stem])


def test_the_keypoints_loop_refuses_a_missing_coco_file_by_name():
    from trainer.loops import keypoints as keypoints_loop

    p = _prepared(tvk.NAME, "coco", keypoints={"names": ["a", "b"], "skeleton": []})
    with pytest.raises(WeightsUnavailable) as refused:
        keypoints_loop.build_model(p)  # type: ignore[arg-type]
    assert catalog.get(tvk.NAME).coco_weights_file in str(refused.value)


# --- the spec's check against the registry -------------------------------------------------------


def _detection_spec(model, source: str) -> dict:
    item = {"path": "a.png", "annotations": [{"category": 0, "bbox": [0, 0, 4, 4]}]}
    return {
        "kind": "detection",
        "model": model,
        "data": {"classes": ["cat"], "items": [item]},
        "transfer": {"source": source, "mode": "fine_tuning"},
    }


def test_the_registry_check_refuses_coco_for_a_model_without_coco_weights():
    assert load_spec(_detection_spec("fcos_resnet50_fpn", "coco")).transfer.source == "coco"
    with pytest.raises(SpecError) as refused:
        load_spec(_detection_spec("centernet_tiny", "coco"))
    assert "centernet_tiny has no COCO weights" in refused.value.errors["transfer.source"]
    layers = [{"type": "Conv2d", "filters": 4, "kernel": 3}]
    spec = {"model": layers, "data": {"classes": ["a", "b"], "items": [{"path": "a.png",
            "label": 0}]}, "transfer": {"source": "coco", "mode": "fine_tuning"}}  # fmt: skip
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    assert "no COCO weights" in refused.value.errors["transfer.source"]
