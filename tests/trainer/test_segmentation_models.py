"""Segmentation models: the U-Net's shapes, parameters and budget at any width; torchvision's
semantic models and Mask R-CNN (forward, a training step, weights from the local cache only,
class rows, budgets, exports) and a run of each family through the driver. The ResNet-50 models
are slow."""

import socket

import onnx
import pytest
import torch

from trainer import budget, catalog, driver, registry
from trainer.events import ListReporter
from trainer.loops.segmentation import segmentation_loss
from trainer.models import WeightsUnavailable
from trainer.models import tv_segmentation as tvs
from trainer.models.unet import UNet
from trainer.segmentation import shapes
from trainer.segmentation.inference import paint
from trainer.spec import load_spec

SIZE = 64
CLASSES = 3
HEAVY = {"deeplabv3_resnet50", "fcn_resnet50", "maskrcnn_resnet50_fpn"}
SEMANTIC = [pytest.param(n, marks=(pytest.mark.slow,) * (n in HEAVY), id=n) for n in tvs.SEMANTIC]
# Tracing and ONNX take 10-15 s even for the MobileNet ones: LR-ASPP, the lightest, is checked
# in every run; the rest are slow.
EXPORTED = [
    pytest.param(n, marks=(pytest.mark.slow,) * (n != "lraspp_mobilenet_v3_large"), id=n)
    for n in tvs.SEMANTIC
]


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


def _spec(model, size, channels, classes, **settings):
    data = {"classes": [f"c{i}" for i in range(classes)], "items": [{"path": "x.png"}]}
    raw = {"kind": "segmentation", "data": data, "model": model, "input_size": size,
           "channels": channels, **settings}  # fmt: skip
    return load_spec(raw, check_registry=False)


def _largest_activation(model, channels, size) -> int:
    largest = [channels * size * size]
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: largest.append(out[0].numel()) if torch.is_tensor(out) else None
        )
        for module in model.modules()
        if not list(module.children())
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, size, size))
    for hook in hooks:
        hook.remove()
    return max(largest)


# --- the U-Net ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "channels", "width"), [(64, 3, 16), (50, 1, 4), (17, 3, 8)])
def test_the_unet_gives_a_logit_per_pixel_and_class_at_any_size(size, channels, width):
    model = UNet(CLASSES, channels, width).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size + 3))
    assert logits.shape == (2, CLASSES + 1, size, size + 3)  # background + classes, same side


@pytest.mark.parametrize(("size", "channels", "width", "classes"),
                         [(128, 3, 16, 10), (50, 1, 4, 2), (96, 3, 32, 300)])  # fmt: skip
def test_the_unets_budget_is_what_torch_builds(size, channels, width, classes):
    spec = _spec("unet", size, channels, classes, width=width)
    sizes = budget.model_sizes(spec)
    built = registry.build("unet", num_classes=classes, in_channels=channels, input_size=size,
                           width=width)  # fmt: skip
    assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
    real = _largest_activation(built, channels, size)
    assert real <= max(s.values for s in sizes) <= 2 * real  # the skip's concatenation: ×2
    assert registry.parameter_count(UNet(10, 3)) == catalog.get("unet").parameters


def test_a_unet_too_wide_for_its_batch_is_refused_naming_the_batch():
    from trainer.spec import SpecError

    with pytest.raises(SpecError) as refused:
        _spec("unet", 1024, 3, 3, width=64, batch_size=32)
    assert "batch_size" in refused.value.errors


# --- torchvision's semantic models ----------------------------------------------------------------


@pytest.mark.parametrize("name", EXPORTED)
def test_a_semantic_model_trains_and_exports(name, tmp_path):
    torch.manual_seed(0)
    model = registry.build(name, num_classes=CLASSES, in_channels=1, input_size=SIZE).train()
    images = torch.randn(1, 1, SIZE, SIZE)  # grey, and a lone image (DeepLab's pooling)
    target = torch.randint(0, CLASSES + 1, (1, SIZE, SIZE))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    first = segmentation_loss(model(images), target, 0.5)["loss"]
    first.backward()
    optimizer.step()
    assert torch.isfinite(first)
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert logits.shape == (1, CLASSES + 1, SIZE, SIZE)
    keys = model.class_keys()
    state = model.state_dict()
    assert keys and all(state[key].shape[0] == CLASSES + 1 for key in keys)
    assert model.class_rows(keys[0], [2, 0, 1]) == [0, 3, 1, 2]  # background stays first
    # Exports: the loop's default tracing exporters.
    from trainer import export

    export.export_torchscript(model, images, tmp_path / "m.pt")
    assert torch.allclose(torch.jit.load(str(tmp_path / "m.pt"))(images), logits, atol=1e-4)
    export.export_onnx(model, images, tmp_path / "m.onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("name", SEMANTIC)
def test_the_budget_of_a_semantic_model_bounds_what_torch_builds(name):
    info = registry.get_info(name)
    for size, channels, classes in [(64, 1, 3), (64, 3, 40)]:
        spec = _spec(name, size, channels, classes)
        sizes = budget.model_sizes(spec)
        built = registry.build(name, num_classes=classes, in_channels=channels, input_size=size)
        assert sum(s.parameters for s in sizes) == registry.parameter_count(built)
        assert _largest_activation(built, channels, size) <= max(s.values for s in sizes)
    assert sum(s.parameters for s in sizes) != info.parameters  # 40 classes, not the catalog's 10
    assert (
        registry.parameter_count(
            registry.build(name, num_classes=10, in_channels=3, input_size=SIZE)
        )
        == info.parameters
    )


@pytest.mark.parametrize("name", [*tvs.SEMANTIC, tvs.MASK_RCNN.name])
def test_asking_for_absent_weights_says_which_file_and_never_downloads(name):
    with pytest.raises(WeightsUnavailable, match="never downloads") as refused:
        registry.build(name, num_classes=2, in_channels=3, input_size=SIZE, pretrained=True)
    assert catalog.get(name).weights_file in str(refused.value)


def test_imagenet_weights_in_the_cache_are_loaded():
    import torchvision

    backbone = torchvision.models.mobilenet_v3_large(weights=None)  # stands in for ImageNet's
    folder = tvs._checkpoints()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / catalog.get("lraspp_mobilenet_v3_large").weights_file
    torch.save(backbone.state_dict(), path)
    try:
        model = registry.build(
            "lraspp_mobilenet_v3_large", num_classes=2, in_channels=3, input_size=SIZE,
            pretrained=True,
        )  # fmt: skip
        stem = model.model.backbone["0"][0].weight
        assert torch.equal(stem, backbone.features[0][0].weight)
        assert model.weights_mean_std == tvs.IMAGENET_MEAN_STD
    finally:
        path.unlink()


# --- Mask R-CNN -----------------------------------------------------------------------------------


def _objects():
    mask = torch.zeros(2, SIZE, SIZE, dtype=torch.uint8)
    mask[0, 4:30, 6:40] = 1
    mask[1, 40:60, 30:62] = 1
    boxes = torch.tensor([[6.0, 4.0, 40.0, 30.0], [30.0, 40.0, 62.0, 60.0]])
    return {"masks": mask, "labels": torch.tensor([2, 0]), "boxes": boxes}


@pytest.mark.slow
def test_mask_rcnn_trains_finds_objects_and_exports(tmp_path):
    torch.manual_seed(0)
    model = registry.build(tvs.MASK_RCNN.name, num_classes=CLASSES, in_channels=3,
                           input_size=SIZE).train()  # fmt: skip
    images = torch.randn(2, 3, SIZE, SIZE)
    parts = model.losses(images, [_objects(), _objects()])
    assert set(parts) == {"loss", "loss_classifier", "loss_box_reg", "loss_mask",
                          "loss_objectness", "loss_rpn_box_reg"}  # fmt: skip
    parts["loss"].backward()
    found = model.segment(images[:1], score_threshold=0.0, max_detections=20)
    (one,) = found
    assert one["masks"].shape[1:] == (SIZE, SIZE) and len(one["masks"]) <= 20
    assert one["labels"].min() >= 0 and one["labels"].max() < CLASSES
    class_map = paint(one, SIZE, score=0.0)
    assert class_map.shape == (SIZE, SIZE) and class_map.max() <= CLASSES
    keys = model.class_keys()
    assert model.class_rows(next(k for k in keys if "bbox_pred" in k), [1, 0]) == [
        0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7,
    ]  # fmt: skip
    model.train()
    assert model(images) == []  # a training-mode forward: the driver's BatchNorm refresh
    for kind, exporter in model.export_formats().items():
        exporter(model, images[:1], tmp_path / kind)
    scripted = torch.jit.load(str(tmp_path / "torchscript"))
    assert set(scripted.eval()(images[:1])[0]) >= {"boxes", "labels", "scores", "masks"}
    onnx.checker.check_model(str(tmp_path / "onnx"))


# --- through the driver ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    return shapes.write_shapes(tmp_path_factory.mktemp("shapes"), 12, size=64, splits=(0.5, 0.25))


def _run(data, model, out, **settings):
    spec = load_spec(
        {"kind": "segmentation", "data": data, "model": model, "input_size": SIZE,
         "batch_size": 4, "epochs": 1, "device": "cpu", **settings},
        local_files=True,
    )  # fmt: skip
    reporter = ListReporter()
    result = driver.run(spec, out, reporter)
    return result, reporter


def test_lraspp_runs_through_the_driver(shapes_data, tmp_path):
    import json

    result, _ = _run(shapes_data, "lraspp_mobilenet_v3_large", tmp_path)
    assert 0 <= result["test"]["miou"] <= 1 and result["test"]["segm_ap"] is None
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["build"] == {} and card["exports"]["onnx"] == "model.onnx"


@pytest.mark.slow
def test_mask_rcnn_runs_through_the_driver_with_segm_ap(shapes_data, tmp_path):
    import json

    result, reporter = _run(shapes_data, tvs.MASK_RCNN.name, tmp_path)
    (epoch,) = reporter.of_kind("epoch")
    assert epoch["val_loss"] is None and "train_loss_mask" in epoch
    test = result["test"]
    assert test["loss"] is None and 0 <= test["segm_ap"] <= test["segm_ap50"] <= 1
    assert 0 <= test["pixel_accuracy"] <= 1
    rows = json.loads((tmp_path / driver.TEST_PREDICTIONS).read_text())
    assert len(rows) == 3 and all(row["size"] == [SIZE, SIZE] for row in rows)
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert set(card["exports"]) == {"safetensors", "torchscript", "onnx"}
