"""What can be trained with what: every model's facts, without importing torch.

The web app reads this to offer models, fill a spec's default model and check a spec before
anything is queued; `trainer.registry` keeps only the builders and takes every other fact from
here (a test builds each model and checks its parameter count). Like torchvision's weights
enums, nothing here needs a model built.
"""

import os
from dataclasses import dataclass
from pathlib import Path

REFERENCE_CLASSES = 10  # `ModelEntry.parameters` counts a head of this many classes
FAMILIES = ("preset", "layers", "torchvision", "detector")


@dataclass(frozen=True)
class ModelEntry:
    """One trainable model: what it is for and what it needs, for a student to choose by."""

    name: str  # "simple_cnn"
    kind: str  # the ML problem: trainer.kinds.KINDS
    family: str  # "preset" | "layers" | "torchvision" | "detector" (FAMILIES)
    description: dict[str, str]  # {"ja": ..., "en": ...}, one line each
    parameters: int  # at REFERENCE_CLASSES classes, default_input_size and default_channels
    default_input_size: int  # square side used when the spec says nothing
    min_input_size: int  # smallest side the architecture accepts
    default_channels: int  # 1 or 3
    module: str  # where its builder is registered (imported by trainer.registry)
    weights_file: str = ""  # pretrained weights' file name under $TORCH_HOME/hub/checkpoints/
    weights_from: str = ""  # what they were trained on: "imagenet" or "coco" ("" without)
    # torchvision's COCO file for the whole model (backbone, neck and heads), in the same folder;
    # "" when torchvision has none. `transfer.source: "coco"` starts from it with new class layers.
    coco_weights_file: str = ""
    default: bool = False  # the model a spec of this kind gets when it names none
    cpu_note: dict[str, str] | None = None  # {"ja", "en"}: why it is slow without a GPU

    @property
    def supports_imagenet(self) -> bool:
        """Whether `transfer.source: "imagenet"` can start it from pretrained weights."""
        return bool(self.weights_file)

    @property
    def supports_coco(self) -> bool:
        """Whether `transfer.source: "coco"` can start it from torchvision's COCO weights."""
        return bool(self.coco_weights_file)

    def describe(self, language: str) -> str:
        """The one-line description in `language` ("ja…" is Japanese, anything else English)."""
        return self.description["ja" if language.startswith("ja") else "en"]

    def cpu_note_in(self, language: str) -> str | None:
        """The CPU note in `language`, or None when the model trains well on a CPU."""
        if self.cpu_note is None:
            return None
        return self.cpu_note["ja" if language.startswith("ja") else "en"]


def _preset(name: str, en: str, ja: str, parameters: int, size: int, smallest: int):
    return ModelEntry(
        name,
        "classification",
        "preset",
        {"ja": ja, "en": en},
        parameters,
        size,
        smallest,
        1,
        "trainer.models.presets",
        default=name == "simple_cnn",
    )


def _classifier(name: str, en: str, ja: str, parameters: int, weights_file: str) -> ModelEntry:
    # Five stride-2 stages take 32 pixels to 1; the adaptive pools take any larger size.
    return ModelEntry(
        name,
        "classification",
        "torchvision",
        {"ja": ja, "en": en},
        parameters,
        224,
        32,
        3,
        "trainer.models.torchvision_models",
        weights_file=weights_file,
        weights_from="imagenet",
    )


def _slow_on_cpu(en: str, ja: str) -> dict[str, str]:
    """The model picker's note on a torchvision detector, with its speed measured on the 2-core
    server (training from scratch, batches of 4, at its default size; load about 1.5)."""
    return {
        "ja": f"このCPUでは最初から学習すると{ja}。GPUワーカーで使ってください",
        "en": f"From scratch on this CPU it trains at {en}; use a GPU worker",
    }


# Lecture presets first, then torchvision classifiers, then detectors: the order pages list them.
_MODELS: list[ModelEntry] = [
    _preset(
        "simple_cnn",
        "Simple CNN: three conv blocks (32→64→128) and global average pooling; fast on a CPU",
        "シンプルなCNN：畳み込み3ブロック（32→64→128）と全体平均プーリング。CPUでも速い",
        94_186,
        32,
        8,  # three 2×2 max-pools: 8 → 4 → 2 → 1
    ),
    _preset(
        "mlp_keras",
        "MLP (Keras example): Dense 512 ReLU, Dropout 0.2, twice, then the output layer",
        "MLP（Kerasの例）：全結合512 ReLU、ドロップアウト0.2を2回、出力層",
        669_706,
        28,
        1,
    ),
    _preset(
        "lenet_lecture",
        "LeNet (lecture): Conv 6@10×10, 16@5×5, 16@5×5 with average pooling, Dense 120, 48",
        "LeNet（講義版）：畳み込み6@10×10・16@5×5・16@5×5と平均プーリング、全結合120・48",
        64_096,
        64,
        32,  # trainer.models.presets.LENET_MIN_INPUT: the smallest that leaves one pixel
    ),
    _preset(
        "logistic",
        "Logistic regression: a one-layer network (Flatten → Dense)",
        "ロジスティック回帰：1層のニューラルネット（平坦化→全結合）",
        7_850,
        28,
        1,
    ),
    # The descriptions' parameter counts are ImageNet's (1,000 classes), as the papers give them;
    # `parameters` counts the REFERENCE_CLASSES head a student's model gets.
    _classifier(
        "resnet18",
        "ResNet-18: residual learning, 11.7 M parameters; a good first transfer model",
        "ResNet-18：残差学習、1170万パラメータ。転移学習の最初の一台に",
        11_181_642,
        "resnet18-f37072fd.pth",
    ),
    _classifier(
        "resnet34",
        "ResNet-34: deeper residual network, 21.8 M parameters",
        "ResNet-34：より深い残差ネットワーク、2180万パラメータ",
        21_289_802,
        "resnet34-b627a593.pth",
    ),
    _classifier(
        "resnet50",
        "ResNet-50: bottleneck residual blocks, 25.6 M parameters",
        "ResNet-50：ボトルネック型の残差ブロック、2560万パラメータ",
        23_528_522,
        "resnet50-11ad3fa6.pth",
    ),
    _classifier(
        "vgg11_bn",
        "VGG-11 with batch normalisation: plain 3×3 convolutions, 132.9 M parameters",
        "VGG-11（BN付き）：3×3畳み込みを重ねた構成、1億3290万パラメータ",
        128_812_810,
        "vgg11_bn-6002323d.pth",
    ),
    _classifier(
        "vgg16_bn",
        "VGG-16 with batch normalisation: 138.4 M parameters; slow without a GPU",
        "VGG-16（BN付き）：1億3840万パラメータ。GPUなしでは遅い",
        134_309_962,
        "vgg16_bn-6c64b313.pth",
    ),
    _classifier(
        "densenet121",
        "DenseNet-121: every layer sees all earlier feature maps, 8.0 M parameters",
        "DenseNet-121：各層がそれまでの全特徴マップを受け取る、800万パラメータ",
        6_964_106,
        "densenet121-a639ec97.pth",
    ),
    _classifier(
        "mobilenet_v3_small",
        "MobileNetV3 Small: built for phones, 2.5 M parameters; fast on a CPU",
        "MobileNetV3 Small：スマホ向けの軽量モデル、250万パラメータ。CPUでも速い",
        1_528_106,
        "mobilenet_v3_small-047dcff4.pth",
    ),
    _classifier(
        "mobilenet_v3_large",
        "MobileNetV3 Large: light and accurate, 5.5 M parameters",
        "MobileNetV3 Large：軽量で高精度、550万パラメータ",
        4_214_842,
        "mobilenet_v3_large-5c1a4163.pth",
    ),
    _classifier(
        "efficientnet_b0",
        "EfficientNet-B0: depth, width and resolution scaled together, 5.3 M parameters",
        "EfficientNet-B0：深さ・幅・解像度をバランスよく拡大、530万パラメータ",
        4_020_358,
        "efficientnet_b0_rwightman-7f5810bc.pth",
    ),
    ModelEntry(
        "centernet_tiny",
        "detection",
        "detector",
        {
            "ja": "CenterNet（小型）：物体を中心点のヒートマップで見つけるアンカーなし1段検出器。"
            "CPUでも学習できる",
            "en": "CenterNet (tiny): a one-stage, anchor-free detector that finds objects as "
            "heat-map peaks at their centres; trains on a CPU",
        },
        436_030,
        64,  # the detection sample's size, as for the U-Nets below (docs/benchmarks.md)
        32,  # stride 16 at the deepest: 32 pixels leave a 2×2 map
        3,
        "trainer.models.centernet",
        default=True,
    ),
    # torchvision's detectors, for GPU workers (trainer/models/tv_detectors.py). Parameters are
    # from scratch: an ImageNet backbone freezes some BatchNorm layers (fewer learnable values)
    # and gives SSDlite its full-width tail (more). weights_file is the backbone's ImageNet file,
    # the one the classifier of the same backbone reads (transfer.source "imagenet");
    # coco_weights_file is torchvision's COCO file of the whole detector (transfer.source "coco":
    # its classifier is replaced for the dataset's classes; tv_detectors.weights_files).
    ModelEntry(
        "fasterrcnn_resnet50_fpn",
        "detection",
        "torchvision",
        {
            "ja": "Faster R-CNN（ResNet-50-FPN v2）：領域の候補を出してから各候補のクラスと枠を"
            "決める2段検出器。高精度、4330万パラメータ",
            "en": "Faster R-CNN (ResNet-50-FPN v2): a two-stage detector that proposes regions, "
            "then classifies and refines each; accurate, 43.3 M parameters",
        },
        43_302_278,
        512,
        32,  # stride 32 at the deepest: 32 pixels leave a 1×1 map
        3,
        "trainer.models.tv_detectors",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
        cpu_note=_slow_on_cpu("about 0.3 images/s (512×512)", "1秒に約0.3枚（512×512）"),
    ),
    ModelEntry(
        "fasterrcnn_mobilenet_v3_large_fpn",
        "detection",
        "torchvision",
        {
            "ja": "Faster R-CNN（MobileNetV3-Large-FPN）：軽いバックボーンの2段検出器、"
            "1900万パラメータ",
            "en": "Faster R-CNN (MobileNetV3-Large-FPN): the two-stage detector on a light "
            "backbone, 19.0 M parameters",
        },
        19_000_754,
        320,
        32,
        3,
        "trainer.models.tv_detectors",
        weights_file="mobilenet_v3_large-5c1a4163.pth",
        weights_from="imagenet",
        coco_weights_file="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
        cpu_note=_slow_on_cpu(
            "about 2 images/s (320×320): 1,000 images take 9 minutes an epoch",
            "1秒に約2枚（320×320）：1,000枚で1エポック9分",
        ),
    ),
    ModelEntry(
        "retinanet_resnet50_fpn",
        "detection",
        "torchvision",
        {
            "ja": "RetinaNet（ResNet-50-FPN）：アンカーとフォーカル損失（focal loss）を使う"
            "1段検出器、3240万パラメータ",
            "en": "RetinaNet (ResNet-50-FPN): a one-stage detector with anchors and the focal "
            "loss, 32.4 M parameters",
        },
        32_387_774,
        512,
        32,
        3,
        "trainer.models.tv_detectors",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="retinanet_resnet50_fpn_coco-eeacb38b.pth",
        cpu_note=_slow_on_cpu(
            "about 1 image/s (512×512): 1,000 images take 16 minutes an epoch",
            "1秒に約1枚（512×512）：1,000枚で1エポック16分",
        ),
    ),
    ModelEntry(
        "fcos_resnet50_fpn",
        "detection",
        "torchvision",
        {
            "ja": "FCOS（ResNet-50-FPN）：物体の内側の各画素から枠を予測するアンカーなし"
            "1段検出器、3210万パラメータ",
            "en": "FCOS (ResNet-50-FPN): a one-stage, anchor-free detector that predicts a box "
            "from each pixel inside an object, 32.1 M parameters",
        },
        32_136_015,
        512,
        32,
        3,
        "trainer.models.tv_detectors",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="fcos_resnet50_fpn_coco-99b0c9b7.pth",
        cpu_note=_slow_on_cpu(
            "about 1 image/s (512×512): 1,000 images take 15 minutes an epoch",
            "1秒に約1枚（512×512）：1,000枚で1エポック15分",
        ),
    ),
    ModelEntry(
        "ssdlite320_mobilenet_v3_large",
        "detection",
        "torchvision",
        {
            "ja": "SSDlite（MobileNetV3-Large）：スマホ向けの軽い1段検出器、230万パラメータ。"
            "標準の入力は320×320",
            "en": "SSDlite (MobileNetV3-Large): a light one-stage detector built for phones, "
            "2.3 M parameters; 320×320 input by default",
        },
        2_331_260,
        320,
        32,
        3,
        "trainer.models.tv_detectors",
        weights_file="mobilenet_v3_large-5c1a4163.pth",
        weights_from="imagenet",
        coco_weights_file="ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
        cpu_note=None,  # about 22 images/s on the 2-core server at 320×320: a CPU will do
    ),
    # Segmentation: the lecture's U-Net (its parameters at the spec's default width, 16; they
    # grow with width²), then torchvision's models for GPU workers
    # (trainer/models/tv_segmentation.py; weights_file is the backbone's ImageNet file,
    # coco_weights_file torchvision's COCO file of the whole model: for the semantic ones the
    # COCO subset with VOC's 20 classes, COCO_WITH_VOC_LABELS_V1). Their
    # CPU speeds were measured like the detectors', but under a load of 1 to 10 (the ResNet-50
    # ones at 1: a rough figure; on a quiet machine perhaps 2-3× faster, still far too slow).
    ModelEntry(
        "unet",
        "segmentation",
        "preset",
        {
            "ja": "U-Net（講義版）：縮小して特徴をとらえ、拡大して戻し、スキップ接続で位置を"
            "取り戻すエンコーダ・デコーダ。CPUでも学習できる",
            "en": "U-Net (lecture): an encoder–decoder that shrinks the picture to see what is "
            "there and grows it back, with skip connections for where; trains on a CPU",
        },
        1_942_747,
        64,  # the samples' size; 128 has 4× the pixels to train on a CPU (docs/benchmarks.md)
        16,  # four 2×2 pools: 16 leaves a 1×1 map (other sides are padded to a multiple of 16)
        3,
        "trainer.models.unet",
        default=True,
    ),
    ModelEntry(
        "deeplabv3_resnet50",
        "segmentation",
        "torchvision",
        {
            "ja": "DeepLabV3（ResNet-50）：膨張畳み込みと多重スケールのプーリング（ASPP）で文脈を"
            "とらえる、3960万パラメータ",
            "en": "DeepLabV3 (ResNet-50): atrous convolutions and pooling at several scales (ASPP) "
            "for context, 39.6 M parameters",
        },
        39_636_299,
        512,
        32,
        3,
        "trainer.models.tv_segmentation",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="deeplabv3_resnet50_coco-cd0a2569.pth",
        cpu_note=_slow_on_cpu(
            "under 0.1 images/s (512×512): 1,000 images take hours an epoch",
            "1秒に0.1枚未満（512×512）：1,000枚で1エポック数時間",
        ),
    ),
    ModelEntry(
        "deeplabv3_mobilenet_v3_large",
        "segmentation",
        "torchvision",
        {
            "ja": "DeepLabV3（MobileNetV3-Large）：軽いバックボーンのDeepLabV3、1100万パラメータ",
            "en": "DeepLabV3 (MobileNetV3-Large): DeepLabV3 on a light backbone, 11.0 M parameters",
        },
        11_022_907,
        320,
        32,
        3,
        "trainer.models.tv_segmentation",
        weights_file="mobilenet_v3_large-5c1a4163.pth",
        weights_from="imagenet",
        coco_weights_file="deeplabv3_mobilenet_v3_large-fc3c493d.pth",
        cpu_note=_slow_on_cpu(
            "about 5 images/s (320×320): 1,000 images take 3 minutes an epoch",
            "1秒に約5枚（320×320）：1,000枚で1エポック3分",
        ),
    ),
    ModelEntry(
        "fcn_resnet50",
        "segmentation",
        "torchvision",
        {
            "ja": "FCN（ResNet-50）：全結合層を畳み込みに置き換えた最初の領域分割ネットワーク、"
            "3300万パラメータ",
            "en": "FCN (ResNet-50): the first segmentation network, fully convolutional, "
            "33.0 M parameters",
        },
        32_951_883,
        512,
        32,
        3,
        "trainer.models.tv_segmentation",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="fcn_resnet50_coco-1167a1af.pth",
        cpu_note=_slow_on_cpu(
            "about 0.1 images/s (512×512): 1,000 images take 2 hours an epoch",
            "1秒に約0.1枚（512×512）：1,000枚で1エポック2時間",
        ),
    ),
    ModelEntry(
        "lraspp_mobilenet_v3_large",
        "segmentation",
        "torchvision",
        {
            "ja": "LR-ASPP（MobileNetV3-Large）：スマホ向けの軽い領域分割、320万パラメータ",
            "en": "LR-ASPP (MobileNetV3-Large): light segmentation built for phones, "
            "3.2 M parameters",
        },
        3_219_838,
        320,
        32,
        3,
        "trainer.models.tv_segmentation",
        weights_file="mobilenet_v3_large-5c1a4163.pth",
        weights_from="imagenet",
        coco_weights_file="lraspp_mobilenet_v3_large-d234d4ea.pth",
        cpu_note=_slow_on_cpu(
            "about 9 images/s (320×320): 1,000 images take 2 minutes an epoch",
            "1秒に約9枚（320×320）：1,000枚で1エポック2分",
        ),
    ),
    ModelEntry(
        "maskrcnn_resnet50_fpn",
        "segmentation",
        "torchvision",
        {
            "ja": "Mask R-CNN（ResNet-50-FPN v2）：物体を1つずつ見つけて枠とマスクを出す"
            "インスタンスセグメンテーション、4590万パラメータ",
            "en": "Mask R-CNN (ResNet-50-FPN v2): instance segmentation, a box and a mask for each "
            "object, 45.9 M parameters",
        },
        45_928_849,
        512,
        32,
        3,
        "trainer.models.tv_segmentation",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
        cpu_note=_slow_on_cpu(
            "under 0.1 images/s (512×512): 1,000 images take hours an epoch",
            "1秒に0.1枚未満（512×512）：1,000枚で1エポック数時間",
        ),
    ),
    # Keypoints (pose): a small U-Net of heat maps (trainer/models/pose_net.py; for keypoints,
    # REFERENCE_CLASSES counts keypoints: one heat map each), then torchvision's Keypoint R-CNN
    # for GPU workers (trainer/models/tv_keypoints.py; weights_file is the backbone's ImageNet
    # file, as for Faster R-CNN; coco_weights_file torchvision's COCO person keypoints).
    ModelEntry(
        "pose_unet",
        "keypoints",
        "preset",
        {
            "ja": "ポーズU-Net：関節点ごとのヒートマップで1人の姿勢を見つける小さなU-Net。"
            "CPUでも学習できる",
            "en": "Pose U-Net: a small U-Net that finds one figure's pose as a heat map per "
            "keypoint; trains on a CPU",
        },
        474_010,
        64,  # the keypoints sample's size, as for the U-Net above
        16,  # three 2×2 pools: 16 leaves a 2×2 map (other sides are padded to a multiple of 8)
        3,
        "trainer.models.pose_net",
        default=True,
    ),
    ModelEntry(
        "keypointrcnn_resnet50_fpn",
        "keypoints",
        "torchvision",
        {
            "ja": "Keypoint R-CNN（ResNet-50-FPN）：人を1人ずつ枠で見つけ、枠ごとに関節点を出す"
            "2段モデル。複数人に対応、5910万パラメータ",
            "en": "Keypoint R-CNN (ResNet-50-FPN): finds each person as a box, then their "
            "keypoints inside it; many people per image, 59.1 M parameters",
        },
        59_133_027,
        512,
        32,
        3,
        "trainer.models.tv_keypoints",
        weights_file="resnet50-11ad3fa6.pth",
        weights_from="imagenet",
        coco_weights_file="keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
        cpu_note=_slow_on_cpu("about 0.1–0.2 images/s (512×512)", "1秒に約0.1〜0.2枚（512×512）"),
    ),
]


def models(kind: str | None = None) -> list[ModelEntry]:
    """Every model, or those of one kind, lecture presets first."""
    return [entry for entry in _MODELS if kind is None or entry.kind == kind]


def get(name: str) -> ModelEntry:
    """One model's entry; KeyError naming the known models if there is none."""
    for entry in _MODELS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown model {name!r}; the models are: {', '.join(names())}")


def names(kind: str | None = None) -> list[str]:
    """The models' names, in catalog order."""
    return [entry.name for entry in models(kind)]


def default_for(kind: str) -> str:
    """The model a spec of `kind` gets when it names none; KeyError for a kind without one."""
    for entry in models(kind):
        if entry.default:
            return entry.name
    raise KeyError(f"no model is the default for {kind!r}")


def checkpoints_dir() -> Path:
    """Where torchvision (and so the trainer) reads pretrained weights: torch.hub's own rule,
    $TORCH_HOME/hub/checkpoints with TORCH_HOME defaulting to $XDG_CACHE_HOME/torch or
    ~/.cache/torch."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(cache_home, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def weights_available(entry: ModelEntry, source: str = "imagenet") -> bool:
    """Whether an administrator has put `entry`'s pretrained weights for `source` ("imagenet":
    `weights_file`, "coco": `coco_weights_file`) where the trainer reads them (nothing is ever
    downloaded)."""
    name = entry.coco_weights_file if source == "coco" else entry.weights_file
    return bool(name) and (checkpoints_dir() / name).is_file()
