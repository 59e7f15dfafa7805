"""torchvision's detectors behind the Detector interface: losses, boxes, weights from the local
cache only, class rows, export. Each model is built once; the ResNet-50 ones are slow."""

import copy
import socket

import onnx
import pytest
import torch

from trainer import catalog, registry
from trainer.models import WeightsUnavailable
from trainer.models import tv_detectors as tvd

SIZE = 64
CLASSES = 3
HEAVY = {"fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn"}
PARTS = {
    "fasterrcnn_resnet50_fpn": {"loss_classifier", "loss_box_reg", "loss_objectness",
                                "loss_rpn_box_reg"},
    "fasterrcnn_mobilenet_v3_large_fpn": {"loss_classifier", "loss_box_reg", "loss_objectness",
                                          "loss_rpn_box_reg"},
    "retinanet_resnet50_fpn": {"classification", "bbox_regression"},
    "fcos_resnet50_fpn": {"classification", "bbox_regression", "bbox_ctrness"},
    "ssdlite320_mobilenet_v3_large": {"classification", "bbox_regression"},
}  # fmt: skip


def _names(*, quick_only: bool = False):
    names = [name for name in tvd.RECIPES if not (quick_only and name in HEAVY)]
    return [pytest.param(n, marks=(pytest.mark.slow,) * (n in HEAVY), id=n) for n in names]


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """An empty torch cache, and no way out: a download or a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the network was touched: {args[:2]}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(torch.hub, "download_url_to_file", refuse)
        yield


_BUILT: dict[str, tvd.TorchvisionDetector] = {}


def _model(name: str) -> tvd.TorchvisionDetector:
    """One model per name for the whole module (building the big ones takes seconds)."""
    if name not in _BUILT:
        torch.manual_seed(0)
        _BUILT[name] = registry.build(  # type: ignore[assignment]
            name, num_classes=CLASSES, in_channels=3, input_size=SIZE
        )
    return _BUILT[name]


def _batch():
    images = torch.randn(2, 3, SIZE, SIZE)  # as the loop gives them: normalised
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.tensor([[10.0, 8.0, 50.0, 60.0], [0.0, 0.0, 20.0, 24.0]]),
         "labels": torch.tensor([0, 1])},
    ]  # fmt: skip
    return images, targets


@pytest.mark.parametrize("name", _names())
def test_losses_sum_torchvisions_named_parts_and_train(name):
    model = _model(name)
    model.train()
    model.zero_grad()
    images, targets = _batch()
    losses = model.losses(images, targets)
    assert set(losses) == {"loss"} | PARTS[name]
    for value in losses.values():
        assert value.shape == () and value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.allclose(losses["loss"], sum(losses[part] for part in PARTS[name]))
    losses["loss"].backward()
    head = model.head_parameters()
    assert head and all(p.grad is not None and torch.isfinite(p.grad).all() for p in head)
    assert {id(p) for p in head} <= {id(p) for p in model.parameters()}


@pytest.mark.parametrize("name", _names())
def test_detect_gives_the_contracts_boxes_with_0_based_labels(name):
    model = _model(name)
    model.train()
    images, _ = _batch()
    found = model.detect(images, score_threshold=0.0, max_detections=5)
    assert model.training  # detect() leaves the mode as it was
    assert len(found) == 2
    for one in found:
        k = len(one["scores"])
        assert 0 < k <= 5
        assert one["boxes"].shape == (k, 4) and one["boxes"].dtype == torch.float32
        assert one["labels"].shape == (k,) and one["labels"].dtype == torch.int64
        assert ((one["labels"] >= 0) & (one["labels"] < CLASSES)).all()
        assert (one["scores"][:-1] >= one["scores"][1:]).all()  # best first
        boxes = one["boxes"]
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
        assert boxes.min() >= 0 and boxes.max() <= SIZE  # input pixels
    none = model.detect(images, score_threshold=1.0, max_detections=5)
    assert [one["boxes"].shape for one in none] == [(0, 4), (0, 4)]


@pytest.mark.parametrize("name", _names())
def test_targets_reach_torchvision_with_its_background_class_and_pixels_unchanged(name):
    model = _model(name)
    model.train()
    seen = []
    hook = model.model.register_forward_pre_hook(lambda _m, args: seen.append(args))
    try:
        images, targets = _batch()
        model.losses(images, targets)
    finally:
        hook.remove()
    (their_images, their_targets), shift = seen[0], int(tvd.RECIPES[name].background)
    assert [t["labels"].tolist() for t in their_targets] == [[2 + shift], [0 + shift, 1 + shift]]
    # torchvision's transform neither resizes nor normalises what the loop prepared.
    transform = model.model.transform
    batched, targets_after = transform(their_images, their_targets)
    assert torch.equal(batched.tensors, images)
    assert torch.equal(targets_after[1]["boxes"], targets[1]["boxes"])


def test_grey_images_a_lone_image_and_boxes_without_area_train():
    model = _model("ssdlite320_mobilenet_v3_large")
    model.train()
    grey = torch.randn(1, 1, SIZE, SIZE)  # one image: BatchNorm at 1×1 maps needs two
    sliver = {"boxes": torch.tensor([[5.0, 5.0, 5.0, 30.0], [8.0, 9.0, 40.0, 41.0]]),
              "labels": torch.tensor([0, 2])}  # fmt: skip
    assert torch.isfinite(model.losses(grey, [sliver])["loss"])
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    assert torch.isfinite(model.losses(torch.randn(2, 3, SIZE, SIZE), [empty, sliver])["loss"])
    assert len(model.detect(grey, score_threshold=0.0, max_detections=3)) == 1


def test_losses_stay_in_fp32_under_autocast():
    model = _model("fasterrcnn_mobilenet_v3_large_fpn")
    model.train()
    images, targets = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.losses(images, targets)
    assert all(value.dtype == torch.float32 for value in losses.values())
    losses["loss"].backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        found = model.detect(images, score_threshold=0.0, max_detections=4)
    assert found[0]["boxes"].dtype == torch.float32


def test_losses_in_eval_mode_are_refused_and_evaluation_has_none():
    model = _model("ssdlite320_mobilenet_v3_large")
    model.eval()
    images, targets = _batch()
    with pytest.raises(RuntimeError, match="training mode"):
        model.losses(images, targets)
    parts, found = model.evaluate_batch(images, targets, score_threshold=0.0, max_detections=2)
    assert parts == {} and len(found) == 2


# --- weights: the local cache or nothing ----------------------------------------------------------


@pytest.mark.parametrize("name", list(tvd.RECIPES))
def test_asking_for_absent_weights_says_which_file_and_never_downloads(name):
    files = tvd.weights_files(name)
    with pytest.raises(WeightsUnavailable, match="never downloads") as imagenet:
        registry.build(name, num_classes=2, in_channels=3, input_size=SIZE, pretrained=True)
    assert files["imagenet"][0] in str(imagenet.value) and "ImageNet" in str(imagenet.value)
    with pytest.raises(WeightsUnavailable, match="COCO weights") as coco:
        tvd.build_detector(name, num_classes=2, in_channels=3, input_size=SIZE, pretrained="coco")
    assert files["coco"][0] in str(coco.value)
    assert catalog.get(name).weights_file == files["imagenet"][0]  # the catalog names it


def _checkpoints():
    folder = tvd._checkpoints()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_imagenet_and_coco_weights_in_the_cache_are_loaded(tmp_path):
    import torchvision
    from torchvision.models import detection

    name = "ssdlite320_mobilenet_v3_large"
    backbone = torchvision.models.mobilenet_v3_large(weights=None)  # stands in for ImageNet's
    imagenet = _checkpoints() / tvd.weights_files(name)["imagenet"][0]
    torch.save(backbone.state_dict(), imagenet)
    # COCO's shape (its builder would fetch ImageNet weights for the backbone unless told not to)
    coco = detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=91
    )
    coco_file = _checkpoints() / tvd.weights_files(name)["coco"][0]
    torch.save(coco.state_dict(), coco_file)
    try:
        from_imagenet = registry.build(
            name, num_classes=CLASSES, in_channels=3, input_size=SIZE, pretrained=True
        )
        first = from_imagenet.model.backbone.features[0][0][0].weight
        assert torch.equal(first, backbone.features[0][0].weight)
        from_coco = tvd.build_detector(
            name, num_classes=CLASSES, in_channels=3, input_size=SIZE, pretrained="coco"
        )
        state, theirs = from_coco.state_dict(), coco.state_dict()
        assert torch.equal(state["model.backbone.features.0.0.0.weight"],
                           theirs["backbone.features.0.0.0.weight"])  # fmt: skip
        for key in from_coco.class_keys():  # a new classifier for our 3 classes + background
            assert state[key].shape[0] == theirs[key[len("model.") :]].shape[0] // 91 * 4
        found = from_coco.detect(torch.randn(1, 3, SIZE, SIZE), score_threshold=0.0,
                                 max_detections=50)  # fmt: skip
        assert found[0]["labels"].max() < CLASSES
        coco_file.write_bytes(b"not a checkpoint")
        with pytest.raises(WeightsUnavailable, match="could not be read"):
            tvd.build_detector(name, num_classes=2, in_channels=3, input_size=SIZE,
                               pretrained="coco")  # fmt: skip
    finally:
        imagenet.unlink()
        coco_file.unlink()


# --- class rows and export -----------------------------------------------------------------------


def test_class_rows_follow_torchvisions_layouts():
    frcnn = _model("fasterrcnn_mobilenet_v3_large_fpn")
    order = [2, 0, 1]  # new class i is old class order[i]
    boxes = frcnn.class_rows("model.roi_heads.box_predictor.bbox_pred.weight", order)
    assert boxes == [0, 1, 2, 3, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9, 10, 11]  # background first
    ssd = _model("ssdlite320_mobilenet_v3_large")
    key = "model.head.classification_head.module_list.0.1.bias"
    assert ssd.class_rows(key, order)[:8] == [0, 3, 1, 2, 4, 7, 5, 6]  # (anchor, class)
    for model in (frcnn, ssd):
        state = model.state_dict()
        for key in model.class_keys():
            assert len(model.class_rows(key, order)) == state[key].shape[0]


@pytest.mark.parametrize("name", _names(quick_only=True))
def test_reordered_class_rows_give_the_same_boxes_under_new_labels(name):
    model = _model(name)
    model.eval()
    order = [1, 2, 0]
    moved = registry.build(name, num_classes=CLASSES, in_channels=3, input_size=SIZE).eval()
    state = model.state_dict()
    for key in model.class_keys():
        state[key] = state[key][model.class_rows(key, order)]
    moved.load_state_dict(state)
    images, _ = _batch()
    before = model.detect(images, score_threshold=0.0, max_detections=20)
    after = moved.detect(images, score_threshold=0.0, max_detections=20)
    for old, new in zip(before, after, strict=True):
        assert torch.allclose(old["scores"], new["scores"], atol=1e-5)
        assert [order[label] for label in new["labels"].tolist()] == old["labels"].tolist()


@pytest.mark.parametrize("name", _names())
def test_torchscript_and_onnx_exports(name, tmp_path):
    model = copy.deepcopy(_model(name)).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # untrained class scores tie (SSDlite's are all 1/4): spread them
        for key in model.class_keys():
            model.state_dict()[key].add_(torch.randn_like(model.state_dict()[key]))
    example = torch.randn(1, 3, SIZE, SIZE)
    exporters = model.export_formats()
    assert set(exporters) == {"torchscript", "onnx"}
    # The export keeps the limits detect() was last given (the loop evaluates with the spec's).
    want = model.detect(example, score_threshold=0.05, max_detections=30)[0]
    exporters["torchscript"](model, example, tmp_path / "model.torchscript.pt")
    scripted = torch.jit.load(str(tmp_path / "model.torchscript.pt"))
    got = scripted(example)[0]
    assert torch.allclose(got["scores"], want["scores"], atol=1e-5)
    # The same detections, those of equal scores perhaps in another order; scripted Faster
    # R-CNN's boxes differ by a few hundredths of a pixel (its box coder rounds otherwise).
    rows = lambda d: torch.cat([d["boxes"], 100 * d["labels"][:, None]], 1)  # noqa: E731
    distance = torch.cdist(rows(got).detach(), rows(want))  # (K, K)
    assert distance.min(1).values.max() < 0.1 and distance.min(0).values.max() < 0.1
    assert got["labels"].max() < CLASSES  # 0-based in the export too
    exporters["onnx"](model, example, tmp_path / "model.onnx")
    graph = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(graph)
    assert [o.name for o in graph.graph.output] == ["boxes", "scores", "labels"]


def test_a_training_mode_forward_refreshes_batch_norm_and_leaves_randomness_alone():
    model = _model("fasterrcnn_mobilenet_v3_large_fpn")  # samples regions with torch's RNG
    model.train()
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.reset_running_stats()
    images, _ = _batch()
    before = torch.random.get_rng_state()
    assert model(images) == []  # the driver's BatchNorm refresh: every layer, no boxes
    assert torch.equal(torch.random.get_rng_state(), before)
    assert norm.num_batches_tracked == 1 and not torch.equal(
        norm.running_mean, torch.zeros_like(norm.running_mean)
    )
