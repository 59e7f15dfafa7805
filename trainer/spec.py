"""The job spec: what to train, on which data, how. Typed, validated, versioned.

`load_spec` is the one way in from outside; every problem comes back as a `SpecError` whose
`.errors` maps a field path ("lr", "data.items.3.label") to a message written for a student.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from trainer import budget, kinds, limits
from trainer.layer_spec import BY_TYPE, Layer, canonical_type, unknown_type_message

MAX_EPOCHS = limits.MAX_EPOCHS
SPEC_VERSION = 1
CHECKPOINT_SUFFIX = ".safetensors"
MAX_LISTED = 10  # per-item errors listed before the rest are summed up

Fraction = Annotated[float, Field(ge=0, le=1)]
Beta = Annotated[float, Field(ge=0, lt=1)]


class SpecError(ValueError):
    """A job spec that cannot run; `.errors` maps field paths to messages for a student.

    `.details` gives some of them as data ({field: {"code": …, numbers…}}), so that an app can
    word them in its reader's language (the budget's sizes, `trainer.budget.Excess`).
    """

    def __init__(self, errors: dict[str, str], details: dict[str, dict] | None = None) -> None:
        self.errors = errors
        self.details = details or {}
        listed = "; ".join(f"{field}: {message}" for field, message in errors.items())
        super().__init__(f"the job spec has {len(errors)} problem(s): {listed}")


def _problems(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """One validation error carrying several (field path relative to the model, message) pairs."""
    summary = "; ".join(f"{field}: {message}" for field, message in problems)
    return PydanticCustomError(
        "spec_problems", "{summary}", {"summary": summary, "problems": problems}
    )


class _Settings(BaseModel):
    # A misspelt setting must not be silently ignored; NaN and infinity are never meant.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Coordinate = Annotated[float, Field(ge=-limits.MAX_IMAGE_SIDE, le=2 * limits.MAX_IMAGE_SIDE)]


class RLE(_Settings):
    """A COCO RLE mask: `size` [height, width] of its image, `counts` pycocotools' compressed
    string or the list of run lengths. Bounded here; the runs adding up to height × width is
    checked where the mask is decoded (trainer.segmentation.data.rle_mask)."""

    size: Annotated[
        list[Annotated[int, Field(ge=1, le=limits.MAX_IMAGE_SIDE)]],
        Field(min_length=2, max_length=2),
    ]
    # Told apart by type, so that an error names the one the value is (tags as pydantic's own).
    counts: Annotated[
        Annotated[
            str, Field(max_length=limits.MAX_RLE_COUNTS, pattern=r"^[0-o]*$"), Tag("str")
        ]  # pycocotools' characters: "0" to "o"
        | Annotated[
            list[Annotated[int, Field(ge=0, le=limits.MAX_IMAGE_SIDE**2)]],
            Field(max_length=limits.MAX_RLE_COUNTS),
            Tag("list[int]"),
        ],
        Discriminator(lambda value: "str" if isinstance(value, str) else "list[int]"),
    ]


# Validated as an RLE, kept as the plain dict the mask decoders read.
RLEMask = Annotated[RLE, AfterValidator(lambda rle: rle.model_dump())]


class ObjectAnnotation(_Settings):
    """One object in an image, in the COCO shapes the datasets store, in the original image's
    pixels: a box [x, y, w, h], polygons or RLE, keypoints [x1, y1, v1, ...]."""

    category: int = Field(ge=0, le=limits.MAX_CLASSES - 1)  # index into data.classes
    bbox: Annotated[list[Coordinate], Field(min_length=4, max_length=4)] | None = None
    # Polygons or an RLE, told apart by type (a dict is an RLE); the tags read as pydantic's own.
    segmentation: (
        Annotated[
            Annotated[
                list[Annotated[list[Coordinate], Field(max_length=limits.MAX_POLYGON_POINTS * 2)]],
                Field(max_length=limits.MAX_POLYGONS),
                Tag("list[polygon]"),
            ]
            | Annotated[RLEMask, Tag("dict[rle]")],
            Discriminator(
                lambda value: "dict[rle]" if isinstance(value, dict | RLE) else "list[polygon]"
            ),
        ]
        | None
    ) = None
    keypoints: Annotated[list[Coordinate], Field(max_length=limits.MAX_KEYPOINTS * 3)] | None = None
    iscrowd: bool = False

    @field_validator("bbox")
    @classmethod
    def _positive_box(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (value[2] <= 0 or value[3] <= 0):
            raise ValueError("a box needs a width and a height above 0")
        return value


class ManifestItem(_Settings):
    """One image of the data set: where it is, its class or its objects, its split and fold."""

    path: str = Field(min_length=1)
    label: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)  # checked below too
    annotations: list[ObjectAnnotation] = Field([], max_length=limits.MAX_OBJECTS_PER_IMAGE)
    split: Literal["train", "val", "test"] = "train"
    fold: int = Field(default=-1, ge=-1, le=limits.MAX_KFOLD)  # -1: in no cross-validation fold
    id: str | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None


class KeypointSchema(_Settings):
    """A keypoint set's names, its skeleton and the OKS sigmas: COCO's `categories[].keypoints`
    and `skeleton` (1-based pairs), with the per-keypoint sigmas OKS needs (None: COCO's 17 when
    the names are COCO's, else 0.05 for every keypoint; trainer.keypoint_metrics)."""

    names: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=limits.MAX_KEYPOINTS
    )
    skeleton: list[
        Annotated[
            list[Annotated[int, Field(ge=1, le=limits.MAX_KEYPOINTS)]],
            Field(min_length=2, max_length=2),
        ]
    ] = Field([], max_length=limits.MAX_KEYPOINTS * 4)
    sigmas: list[Annotated[float, Field(gt=0, le=10)]] | None = None

    @model_validator(mode="after")
    def _check_pairs(self) -> KeypointSchema:
        problems: list[tuple[str, str]] = []
        count = len(self.names)
        for i, (a, b) in enumerate(self.skeleton):
            if not (1 <= a <= count and 1 <= b <= count):
                problems.append(
                    (f"skeleton.{i}", f"[{a}, {b}] is not a pair of keypoints 1 to {count}")
                )
                break
        if self.sigmas is not None and len(self.sigmas) != count:
            problems.append(
                ("sigmas", f"give one sigma per keypoint ({count}), not {len(self.sigmas)}")
            )
        if len(set(self.names)) != count:
            problems.append(("names", "a keypoint name is listed twice"))
        if problems:
            raise _problems(problems)
        return self


class DataSpec(_Settings):
    """The classes and the images: inline `items` or a `manifest` file, not both."""

    classes: list[Annotated[str, Field(min_length=1)]] = Field([], max_length=limits.MAX_CLASSES)
    items: list[ManifestItem] = []
    manifest: str | None = Field(None, min_length=1)  # JSON lines or a JSON list of items
    root: str | None = None  # base folder for relative item paths
    version: str | None = None  # data version id, recorded on the model card
    keypoints: KeypointSchema | None = None  # the keypoint set (keypoints kind only)

    @model_validator(mode="after")
    def _check_items(self) -> DataSpec:
        problems: list[tuple[str, str]] = []
        if self.items and self.manifest is not None:
            problems.append(("manifest", "give the items or a manifest file, not both"))
        elif not self.items and self.manifest is None:
            problems.append(
                ("items", "there are no images: list the items or give a manifest file")
            )
        seen: set[str] = set()
        for name in self.classes:
            if name in seen:
                problems.append(("classes", f"the class '{name}' is listed twice"))
            seen.add(name)
        problems += _label_problems(self.items, self.classes, "items")
        if problems:
            raise _problems(problems)
        return self


def _label_problems(
    items: list[ManifestItem], classes: list[str], field: str
) -> list[tuple[str, str]]:
    """Out-of-range labels as ("<field>.<i>.label", message): the first few, then a count."""
    if not classes:
        return []
    top = len(classes) - 1
    hint = "use 0, the only class" if top == 0 else f"use 0 to {top}, one per class"
    bad = [
        i for i, item in enumerate(items) if item.label is not None and not 0 <= item.label <= top
    ]
    problems = [
        (f"{field}.{i}.label", f"label {items[i].label} is not a class: {hint}")
        for i in bad[:MAX_LISTED]
    ]
    wrong = [
        (i, j, a.category)
        for i, item in enumerate(items)
        for j, a in enumerate(item.annotations)
        if a.category > top
    ]
    problems += [
        (f"{field}.{i}.annotations.{j}.category", f"category {c} is not a class: {hint}")
        for i, j, c in wrong[:MAX_LISTED]
    ]
    bad += [i for i, _, _ in wrong]
    if len(bad) > MAX_LISTED:
        problems.append(
            (field, f"{len(bad) - MAX_LISTED} more items have a label that is not a class")
        )
    return problems


class Augmentation(_Settings):
    """Random changes to training images; preset "lecture" is the lecture's Keras settings."""

    rotation: float = Field(
        default=0.0,
        ge=0,
        le=180,
        description="Each image is turned by a random angle up to this many degrees either way.",
    )
    shear: Fraction = Field(
        default=0.0,
        description="Slants the image by a random amount up to this (0.3 in the lecture).",
    )
    zoom: Fraction = Field(
        default=0.0,
        description="Enlarges or shrinks by a random factor between 1 − zoom and 1 + zoom.",
    )
    hflip: bool = Field(default=False, description="Mirrors half of the images left to right.")
    vflip: bool = Field(
        default=False,
        description="Turns half of the images upside down (rarely right for digits or faces).",
    )
    color_jitter: Fraction = 0.0
    random_crop: int = Field(default=0, ge=0, le=64)  # padding in pixels before cropping back
    preset: Literal["none", "lecture"] = "none"

    @model_validator(mode="after")
    def _fill_preset(self) -> Augmentation:
        if self.preset == "lecture":
            # Values the student set explicitly win over the preset's.
            for name, value in LECTURE_AUGMENTATION.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    @property
    def enabled(self) -> bool:
        """Whether any augmentation will change the training images."""
        return any(value for name, value in self if name != "preset")


# The lecture's ImageDataGenerator(rotation_range=45, shear_range=0.3, zoom_range=0.4,
# horizontal_flip=True).
LECTURE_AUGMENTATION: dict[str, Any] = {"rotation": 45.0, "shear": 0.3, "zoom": 0.4, "hflip": True}


# Pretrained weights a spec names by what they were trained on (torchvision's files in
# $TORCH_HOME/hub/checkpoints, never downloaded): the catalog says which model has which.
PRETRAINED_SOURCES = ("imagenet", "coco")
_WEIGHTS_NAMES = {"imagenet": "ImageNet", "coco": "COCO"}
_NOT_SAFETENSORS = "only .safetensors checkpoints are accepted; they cannot run code"
# An earlier run of the web app, by its id (at most 18 digits: it always fits a database id).
JOB_SOURCE = re.compile(r"job:[1-9][0-9]{0,17}")
_SOURCES = "choose none, imagenet, coco or an earlier run (job:<id>)"


class Transfer(_Settings):
    """Start from other weights: "none", "imagenet" (a torchvision model's ImageNet backbone),
    "coco" (a torchvision detector's or segmenter's COCO weights) or an earlier run.

    What a user sends names an earlier run as "job:<id>", never a file: the worker checks that
    the job's owner may use that run and resolves it to the run's weights itself. Only a caller
    that runs the spec on its own machine (the CLI, the worker after resolving) passes
    `load_spec(..., local_files=True)`, and then names a .safetensors file instead.
    """

    source: str = Field(
        default="none",
        min_length=1,
        max_length=4096,
        examples=["none", "imagenet", "coco", "job:12"],
        description='"none", "imagenet", "coco" or an earlier run as "job:<id>"',
    )
    mode: Literal["scratch", "feature_extraction", "fine_tuning"] = "scratch"
    backbone_lr_factor: float = Field(
        default=0.1, gt=0, le=1
    )  # fine-tuning: backbone lr = lr × this

    @model_validator(mode="after")
    def _check_source(self, info: ValidationInfo) -> Transfer:
        local_files = bool((info.context or {}).get("local_files"))
        source = self.source
        if source == "none" and self.mode != "scratch":
            raise _problems([("source", "choose a source to transfer from")])
        if source in PRETRAINED_SOURCES or source == "none":
            return self
        if local_files and source.startswith("job:"):
            raise _problems(
                [("source", f"{source} is a run of the web app; name its model.safetensors file")]
            )
        if not local_files and not JOB_SOURCE.fullmatch(source):
            raise _problems([("source", f"{_SOURCES}; files on the server cannot be named")])
        if local_files and not source.endswith(CHECKPOINT_SUFFIX):
            raise _problems([("source", _NOT_SAFETENSORS)])
        return self


class EarlyStopping(_Settings):
    """Stop when the validation metric has not improved for `patience` epochs."""

    patience: int = Field(
        default=5,
        ge=1,
        le=limits.MAX_PATIENCE,
        description="Epochs without improvement before training stops.",
    )
    metric: Literal["val_loss", "val_acc"] = "val_loss"


class DetectionEarlyStopping(EarlyStopping):
    """A detector stops on its validation loss or its mAP@0.5."""

    metric: Literal["val_loss", "val_map50"] = "val_loss"  # type: ignore[assignment]


class SegmentationEarlyStopping(EarlyStopping):
    """A segmenter stops on its validation loss or its mean IoU."""

    metric: Literal["val_loss", "val_miou"] = "val_loss"  # type: ignore[assignment]


class KeypointsEarlyStopping(EarlyStopping):
    """A pose network stops on its validation loss or its PCK@0.1."""

    metric: Literal["val_loss", "val_pck"] = "val_loss"  # type: ignore[assignment]


def _model_kind(value: Any) -> str:
    return "list[Layer]" if isinstance(value, list) else "str"


# Either a name or layers, decided by the value's type, so that the errors of a layer list never
# come with "must be text" from the other branch.
LayerList = Annotated[list[Layer], Field(min_length=1, max_length=limits.MAX_LAYERS)]
ModelChoice = Annotated[
    Annotated[str, Tag("str")] | Annotated[LayerList, Tag("list[Layer]")],
    Discriminator(_model_kind),
]
InputSize = Annotated[int, Field(ge=limits.MIN_INPUT_SIZE, le=limits.MAX_INPUT_SIZE)]


Kind = Literal["classification", "detection", "segmentation", "keypoints"]  # trainer.kinds.KINDS
_EARLY_STOPPING = (
    "Stop when the validation loss has not improved for some epochs, before overfitting sets in."
)


class JobSpec(_Settings):
    """Everything one training job needs; every field but `data` has a default.

    The settings every kind shares. A spec is one of the kinds' subclasses below
    (`ClassificationSpec`, `DetectionSpec`, `SegmentationSpec`, `KeypointsSpec`), chosen by its
    `kind`: `load_spec` decides.

    A kind's training defaults (its recipe) are its class's `RECIPE`: the defaults of these
    shared settings for that kind, bounds unchanged. A spec that leaves them out gets them, and
    so does the Train page, which reads its defaults from the kind's JSON schema.
    """

    # {setting: default} for this kind, over the shared defaults below (__pydantic_init_subclass__).
    RECIPE: ClassVar[dict[str, Any]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        recipe = cls.__dict__.get("RECIPE")
        if not recipe:
            return
        fields = cls.__pydantic_fields__
        for name, value in recipe.items():
            # The same field (type, bounds, description) with the recipe's default.
            fields[name] = FieldInfo.merge_field_infos(fields[name], default=value)
        cls.model_rebuild(force=True)

    spec_version: Literal[1] = 1
    kind: Kind = "classification"
    # A registry name, or a list of layers (the builder's; `layers` gives them as dicts).
    # Left out: the kind's default model (trainer.catalog.default_for).
    model: ModelChoice = "simple_cnn"
    input_size: InputSize | None = Field(  # None: the model's default
        default=None,
        description="Images are resized to this many pixels square; empty: the model's usual size.",
    )
    channels: Literal[1, 3] | None = None  # None: from the data (grayscale → 1)
    data: DataSpec
    optimizer: Literal["sgd", "adam", "adamw"] = Field(
        default="adam",
        description="How the weights follow the gradient: SGD, or Adam/AdamW, which adapt the step "
        "for every weight.",
        json_schema_extra={"x-enumDescriptions": {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}},
    )
    lr: float = Field(
        default=1e-3,
        gt=0,
        le=limits.MAX_LR,
        description="The size of each update step (η): too large and the loss jumps about, too "
        "small and learning is slow.",
    )
    momentum: float = Field(
        default=0.9,
        ge=0,
        lt=1,
        description="SGD only: keeps part of the previous step, which smooths the path downhill.",
    )
    nesterov: bool = False
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    weight_decay: Fraction = Field(
        default=0.0,
        description="Pulls the weights towards zero (L2 regularisation), against overfitting.",
    )
    # A choice's description may name other settings in braces: an app shows their values.
    schedule: Literal["none", "step", "cosine", "onecycle"] = Field(
        default="none",
        description="How the learning rate changes during training.",
        json_schema_extra={
            "x-enumDescriptions": {
                "none": "constant",
                "step": "step decay (×{gamma} every {step_size} epochs)",
                "cosine": "cosine decay",
                "onecycle": "one cycle (warm up, then decay)",
            }
        },
    )
    step_size: int = Field(
        default=10,
        ge=1,
        le=limits.MAX_EPOCHS,
        description="Step decay: epochs between two steps of the learning rate.",
    )
    gamma: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="Step decay: the factor the learning rate is multiplied by at every step.",
    )
    batch_size: int = Field(
        default=64,
        ge=1,
        le=limits.MAX_BATCH_SIZE,
        description="Images per weight update: larger batches run faster per epoch but need "
        "more memory.",
    )
    epochs: int = Field(
        default=5,
        ge=1,
        le=MAX_EPOCHS,
        description="How many times the network sees every training image (one pass = one epoch).",
    )
    label_smoothing: float = Field(  # classification only
        default=0.0,
        ge=0,
        lt=1,
        description="Softens the targets (e.g. 0.1) so that the model is less over-confident.",
    )
    early_stopping: EarlyStopping | None = Field(default=None, description=_EARLY_STOPPING)
    augmentation: Augmentation = Augmentation()
    transfer: Transfer = Transfer()
    kfold: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_KFOLD,
        description="0: one hold-out validation split. 2 or more: train k times on k folds and "
        "report the mean ± std of the accuracy.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_SEED,
        description="Fixes the random start: the same settings then give the same result.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, value: Any) -> Any:
        # `task` is the deprecated name of `kind` (specs written before the seam had kinds);
        # a `model` of null is the kind's default, as if it were left out.
        if isinstance(value, dict):
            value = dict(value)
            if "task" in value:
                task = value.pop("task")
                if "kind" in value and value["kind"] != task:
                    raise _problems([("kind", "give the kind once (task is its old name)")])
                value["kind"] = task
            if "model" in value and value["model"] is None:
                del value["model"]
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _check_model(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise _problems([("", "choose a model")])
            return value.strip()
        if isinstance(value, list):
            if not value:
                raise _problems([("", "add at least one layer")])
            if len(value) > limits.MAX_LAYERS:
                raise _problems([("", f"use at most {limits.MAX_LAYERS} layers")])
            bad = [
                (str(i), "must be one layer's settings (an object)")
                for i, layer in enumerate(value)
                if not isinstance(layer, dict)
            ]
            bad += [
                (str(i), unknown_type_message(layer))
                for i, layer in enumerate(value)
                if isinstance(layer, dict) and canonical_type(layer) is None
            ]
            if bad:
                raise _problems(bad)
            # A type in any case ("conv2d") is the builder's own ("Conv2d").
            return [{**layer, "type": canonical_type(layer)} for layer in value]
        raise _problems([("", "must be a model name or a list of layers")])

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _early_stopping_switch(cls, value: Any) -> Any:
        # A form's checkbox: true turns it on with the defaults, false turns it off.
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("kfold", mode="wrap")
    @classmethod
    def _check_kfold(cls, value: Any, handler: Any) -> int:
        try:
            value = handler(value)  # a whole number within the bounds the schema shows
        except ValidationError:
            value = None
        if value is None or (value != 0 and value < 2):
            raise _problems(
                [("", f"must be 0 (no cross-validation) or between 2 and {limits.MAX_KFOLD}")]
            )
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> JobSpec:
        problems: list[tuple[str, str]] = []
        if not self.data.classes:
            problems.append(("data.classes", "add at least one class"))
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            problems.append(("nesterov", "Nesterov momentum needs a momentum above 0"))
        problems += self._kind_problems()
        if problems:
            raise _problems(problems)
        return self

    def _kind_problems(self) -> list[tuple[str, str]]:
        """What this kind does not allow (the subclasses')."""
        return []

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The layer list as the builder takes it (plain dicts); [] for a named model."""
        return [] if isinstance(self.model, str) else [layer.settings() for layer in self.model]

    def to_json(self) -> str:
        """The spec as JSON text; the same spec always gives the same text."""
        return self.model_dump_json(indent=2)

    def summary(self) -> dict[str, Any]:
        """The few settings a dashboard shows for a job (the "started" event's spec)."""
        model = self.model if isinstance(self.model, str) else f"{len(self.model)} layers"
        return {
            "kind": self.kind,
            "model": model,
            "input_size": self.input_size,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "transfer": self.transfer.source,
            "transfer_mode": self.transfer.mode,
            "augmentation": self.augmentation.enabled,
            "kfold": self.kfold,
            "data_version": self.data.version,
        }

    def build_options(self) -> dict[str, Any]:
        """The builder's own settings for this spec's model beyond its sizes (a U-Net's width)."""
        return {}


class ClassificationSpec(JobSpec):
    """One class per image: cross-entropy, accuracy, a confusion matrix; k folds if asked."""

    kind: Literal["classification"] = "classification"

    def _kind_problems(self) -> list[tuple[str, str]]:
        if any(item.annotations for item in self.data.items[:1]) and not any(
            item.label is not None for item in self.data.items
        ):
            return [("data.items", "a classifier needs a label per image, not boxes")]
        return []


class _NoClassificationSettings(JobSpec):
    """A kind with no k folds and no label smoothing: both held at 0 (the schema says so, and
    the Train page hides them); a layer list is refused (layer lists make classifiers)."""

    kfold: int = Field(default=0, ge=0, le=0)
    label_smoothing: float = Field(default=0.0, ge=0, le=0)

    @field_validator("kfold", "label_smoothing", mode="wrap")
    @classmethod
    def _classification_only(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            setting = "cross-validation" if info.field_name == "kfold" else "label smoothing"
            raise _problems([("", f"{setting} is for classification; use 0")]) from None

    def _kind_problems(self) -> list[tuple[str, str]]:
        if isinstance(self.model, list):
            return [
                ("model", f"a {self.kind} model is chosen by name; layer lists make classifiers")
            ]
        return []


class DetectionSpec(_NoClassificationSettings):
    """Boxes around every object of each class: a detector, mAP, per-image errors."""

    kind: Literal["detection"] = "detection"
    # The recipe that trains centernet_tiny on the 300-image shapes sample to val mAP@0.5 ≥ 0.8
    # on a 2-core CPU (benchmarks/kinds_e2e_bench.py, docs/benchmarks.md): 240 training images
    # need more passes than the benchmark's 800 (there, 6 epochs of 32).
    RECIPE = {
        "optimizer": "adamw",
        "lr": 4e-3,
        "weight_decay": 1e-4,
        "schedule": "onecycle",
        "batch_size": 16,
        "epochs": 20,
    }
    model: ModelChoice = "centernet_tiny"
    score_threshold: Fraction = Field(
        default=0.05,
        description="The lowest score of a box kept in the predictions (the results page can "
        "filter further).",
    )
    max_detections: int = Field(
        default=100, ge=1, le=limits.MAX_DETECTIONS, description="The most boxes kept per image."
    )
    early_stopping: DetectionEarlyStopping | None = Field(  # type: ignore[assignment]
        default=None, description=_EARLY_STOPPING
    )


class SegmentationSpec(_NoClassificationSettings):
    """A class for every pixel: an encoder–decoder (the lecture's U-Net), IoU and Dice."""

    kind: Literal["segmentation"] = "segmentation"
    # The recipe that trains the U-Net on the 1,000-image shapes sample to val mIoU ≥ 0.8 on a
    # 2-core CPU (benchmarks/kinds_e2e_bench.py, docs/benchmarks.md).
    RECIPE = {
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "schedule": "onecycle",
        "batch_size": 8,
        "epochs": 10,
    }
    model: ModelChoice = "unet"
    # The U-Net's channels in its first block (doubled at every level down); others ignore it.
    width: int = Field(
        default=16,
        ge=4,
        le=64,
        description="Channels of the U-Net's first block, doubled at every level down: wider "
        "sees more, trains slower.",
    )
    # loss = cross-entropy + dice_weight × (1 − soft Dice): Dice leaves "all background" early.
    dice_weight: Fraction = Field(
        default=0.5,
        description="Loss = cross-entropy + this × Dice loss. Dice counts the overlap of each "
        "class, so a small object is not drowned by the background.",
    )
    early_stopping: SegmentationEarlyStopping | None = Field(  # type: ignore[assignment]
        default=None, description=_EARLY_STOPPING
    )

    def build_options(self) -> dict[str, Any]:
        return {"width": self.width} if self.model == "unet" else {}


class KeypointsSpec(_NoClassificationSettings):
    """Named points of a figure (pose): a heat map per keypoint, PCK and OKS AP."""

    kind: Literal["keypoints"] = "keypoints"
    # The recipe that trains pose_unet on the 1,000 stick figures to val PCK@0.1 ≥ 0.8 on a
    # 2-core CPU (benchmarks/kinds_e2e_bench.py, docs/benchmarks.md).
    RECIPE = {
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "schedule": "onecycle",
        "batch_size": 32,
        "epochs": 6,
    }
    model: ModelChoice = "pose_unet"
    # The Gaussian target's spread around each true point, in heat-map pixels.
    sigma: float = Field(
        default=2.0,
        ge=0.5,
        le=8.0,
        description="How wide the Gaussian around each true keypoint is in the target heat map: "
        "wider is easier to learn at first, narrower is more precise.",
    )
    early_stopping: KeypointsEarlyStopping | None = Field(  # type: ignore[assignment]
        default=None, description=_EARLY_STOPPING
    )

    def _kind_problems(self) -> list[tuple[str, str]]:
        problems = super()._kind_problems()
        objects = [a for item in self.data.items for a in item.annotations]
        if objects and not any(a.keypoints for a in objects):
            problems.append(("data.items", "no image has keypoints: place some points first"))
        return problems


SPECS: dict[str, type[JobSpec]] = {
    "classification": ClassificationSpec,
    "detection": DetectionSpec,
    "segmentation": SegmentationSpec,
    "keypoints": KeypointsSpec,
}


def _spec_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", value.get("task", "classification")))
    return str(getattr(value, "kind", "classification"))


# What load_spec validates: the spec class of the spec's kind.
AnySpec = Annotated[
    Annotated[ClassificationSpec, Tag("classification")]
    | Annotated[DetectionSpec, Tag("detection")]
    | Annotated[SegmentationSpec, Tag("segmentation")]
    | Annotated[KeypointsSpec, Tag("keypoints")],
    Discriminator(_spec_kind),
]
_ANY_SPEC: TypeAdapter[JobSpec] = TypeAdapter(AnySpec)


def spec_class(kind: str) -> type[JobSpec]:
    """The spec class of a kind (KeyError for a kind the trainer cannot train)."""
    return SPECS[kind]


RECIPES: dict[str, dict[str, Any]] = {
    # The lecture's Keras MLP on digits: Adam(lr=1e-3, β=(0.9, 0.999)), batch 128, 5 epochs.
    "mlp_keras": {
        "model": "mlp_keras",
        "optimizer": "adam",
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "batch_size": 128,
        "epochs": 5,
    },
}


def from_recipe(name: str, **overrides: Any) -> dict[str, Any]:
    """A spec dict from a named recipe, with `overrides` on top (nested dicts are merged)."""
    if name not in RECIPES:
        raise SpecError({"recipe": f"unknown recipe '{name}'; choose one of: {', '.join(RECIPES)}"})
    spec = copy.deepcopy(RECIPES[name])
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def load_spec(
    data: dict[str, Any] | str | Path, *, check_registry: bool = True, local_files: bool = False
) -> JobSpec:
    """Validate a spec given as a dict, JSON text or a JSON file path; raise SpecError if bad.

    The registry checks import torch; a fast web request can pass check_registry=False and leave
    them to the worker. `transfer.source` names a file on this machine only with
    local_files=True: for the CLI and the worker, never for a spec a user sent (which names an
    earlier run as "job:<id>").
    """
    raw = _read(data) if isinstance(data, str | Path) else data
    if not isinstance(raw, dict):
        raise SpecError({"spec": "must be a JSON object of settings"})
    kind = _spec_kind(raw)
    if kind not in get_args(Kind):
        raise SpecError({"kind": f"must be one of {', '.join(get_args(Kind))}"})
    if kind not in SPECS or not kinds.can_train(kind):
        trained = ", ".join(k for k in kinds.trainable() if k in SPECS)
        raise SpecError(
            {"kind": f"training for {kind} is not available yet; this trainer trains {trained}"}
        )
    try:
        spec = _ANY_SPEC.validate_python(raw, context={"local_files": local_files})
    except ValidationError as error:
        raise SpecError(_messages(error, SPECS[kind])) from None
    excesses = budget.check(spec)  # sizes only shapes reveal; torch-free
    if excesses:
        errors: dict[str, str] = {}
        details: dict[str, dict] = {}
        for excess in excesses:
            errors.setdefault(excess.field, excess.message())
            details.setdefault(excess.field, {"code": excess.code, **excess.numbers()})
        raise SpecError(errors, details)
    problems = check_against_registry(spec) if check_registry else []
    if problems:
        raise SpecError(dict(problems))
    return spec


def load_manifest(path: str | Path, *, classes: list[str] | None = None) -> list[ManifestItem]:
    """The items of a manifest file: a JSON list of items, or one JSON object per line.

    With `classes`, labels are checked too. Problems raise SpecError under "data.manifest.<i>".
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(
            {"data.manifest": f"cannot read {path}: {error.strerror or error}"}
        ) from None
    errors: dict[str, str] = {}
    rows: list[tuple[str, Any]] = []  # (where it is in the file, the parsed item)
    whole = _parse_json(text, path.name, "data.manifest") if text.lstrip()[:1] == "[" else None
    if whole is None and text.lstrip()[:1] == "{" and '"items"' in text:
        whole = _parse_json(text, path.name, "data.manifest").get("items")  # {"items": [...]}
    if isinstance(whole, list):
        rows = [(f"item {i}", raw) for i, raw in enumerate(whole)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"line {number}", json.loads(line)))
                except json.JSONDecodeError as error:
                    errors[f"data.manifest.{len(rows)}"] = (
                        f"line {number}: not valid JSON ({error.msg})"
                    )
                    rows.append((f"line {number}", None))
    items: list[ManifestItem] = []
    for i, (where, raw) in enumerate(rows):
        if raw is None and f"data.manifest.{i}" in errors:
            continue
        try:
            items.append(ManifestItem.model_validate(raw))
        except ValidationError as error:
            for field, message in _messages(error, ManifestItem).items():
                key = f"data.manifest.{i}" + ("" if field == "spec" else f".{field}")
                errors.setdefault(key, f"{where}: {message}")
    if not errors:
        for field, message in _label_problems(items, classes or [], "data.manifest"):
            errors[field] = message
    if errors:
        listed = dict(list(errors.items())[:MAX_LISTED])
        if len(errors) > MAX_LISTED:
            listed["data.manifest"] = f"{len(errors) - MAX_LISTED} more problems in {path.name}"
        raise SpecError(listed)
    if not items:
        raise SpecError({"data.manifest": f"{path.name} lists no images"})
    return items


def check_against_registry(spec: JobSpec) -> list[tuple[str, str]]:
    """Problems only the model registry can see: unknown model, too-small input, layer shapes."""
    try:
        registry = importlib.import_module("trainer.registry")
    except ImportError:
        return []  # the registry is not there yet; the trainer checks again when it builds
    problems: list[tuple[str, str]] = []
    if isinstance(spec.model, list):
        if spec.transfer.source in PRETRAINED_SOURCES:
            weights = _WEIGHTS_NAMES[spec.transfer.source]
            problems.append(
                (
                    "transfer.source",
                    f"a model built from layers has no {weights} weights; "
                    "transfer from an earlier run or train from scratch",
                )
            )
        if spec.input_size is not None:  # otherwise the data decides the size at run time
            try:
                registry.build_layers(
                    spec.layers,
                    num_classes=max(len(spec.data.classes), 1),
                    in_channels=spec.channels or 3,
                    input_size=spec.input_size,
                )
            except ValueError as error:
                index = getattr(error, "index", None)
                problems.append(("model" if index is None else f"model.{index}", str(error)))
        return problems
    try:
        info = registry.get_info(spec.model)
    except KeyError:
        models = registry.list_models() if hasattr(registry, "list_models") else []
        names = [getattr(model, "name", str(model)) for model in models]
        hint = f"; choose one of: {', '.join(names)}" if names else ""
        return [("model", f"unknown model '{spec.model}'{hint}")]
    if spec.input_size is not None and spec.input_size < info.min_input_size:
        size = info.min_input_size
        problems.append(("input_size", f"{info.name} needs at least {size}×{size} pixels"))
    if spec.transfer.source == "imagenet" and not info.supports_imagenet:
        problems.append(
            (
                "transfer.source",
                f"{info.name} has no ImageNet weights; transfer from an earlier run or train from "
                "scratch",
            )
        )
    if spec.transfer.source == "coco" and not getattr(info, "supports_coco", False):
        problems.append(
            (
                "transfer.source",
                f"{info.name} has no COCO weights; choose a torchvision detector or segmenter, "
                "transfer from an earlier run or train from scratch",
            )
        )
    if info.kind in get_args(Kind) and info.kind != spec.kind:
        problems.append(
            ("model", f"{info.name} is a {info.kind} model; this job's data is for {spec.kind}")
        )
    source = spec.transfer.source
    if source.endswith(".safetensors") and spec.transfer.mode != "scratch" and not problems:
        problem = _source_mismatch(registry, spec, info, source)
        if problem:
            problems.append(("transfer.source", problem))
    return problems


def _source_mismatch(registry: Any, spec: JobSpec, info: Any, source: str) -> str | None:
    """Why a checkpoint cannot start this model (another architecture), or None if it can.

    Only the tensors' names and shapes are read (safetensors headers); the classifier may differ
    in its class count, since it is replaced.
    """
    from safetensors import safe_open

    if not Path(source).is_file():
        return None  # not reachable from here (e.g. checked on the web side): the run checks it
    try:
        with safe_open(source, framework="pt") as stored:
            shapes = {key: tuple(stored.get_slice(key).get_shape()) for key in stored.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (OSError, ValueError) as error:
        return f"the checkpoint cannot be read ({error})"
    size = spec.input_size or info.default_input_size
    classes = max(len(spec.data.classes), 1)
    # What depends on the class count (a classifier's last Linear, a detector's per-class
    # outputs) is replaced or matched by name at transfer: built with one class more, those
    # are the tensors whose shapes change. Every other tensor must fit exactly.
    built = [
        registry.build(
            info.name,
            num_classes=count,
            in_channels=spec.channels or info.default_channels,
            input_size=size,
            **spec.build_options(),
        ).state_dict()
        for count in (classes, classes + 1)
    ]
    wanted = {key: tuple(t.shape) for key, t in built[0].items()}
    per_class = {key for key, shape in wanted.items() if tuple(built[1][key].shape) != shape}
    wrong = [
        key for key, shape in wanted.items() if key not in per_class and shapes.get(key) != shape
    ]
    if wrong:
        return (
            f"the checkpoint is of another architecture than {info.name} "
            f"({len(wrong)} of its layers do not fit, e.g. {wrong[0]}); "
            "transfer from a run of the same model"
        )
    return None


def _read(source: str | Path) -> Any:
    """JSON text, or the JSON file a path names."""
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        return _parse_json(source, "the spec")
    path = Path(source)
    try:
        return _parse_json(path.read_text(encoding="utf-8"), path.name)
    except OSError as error:
        raise SpecError({"spec": f"cannot read {path}: {error.strerror or error}"}) from None


def _parse_json(text: str, name: str, field: str = "spec") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise SpecError({field: f"{name} is not valid JSON ({where}: {error.msg})"}) from None


# Settings people often write under another name; difflib cannot guess these.
_SYNONYMS = {
    "learning_rate": "lr",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "architecture": "model",
    "arch": "model",
    "optim": "optimizer",
    "batchsize": "batch_size",
    "scheduler": "schedule",
    "image_size": "input_size",
    "img_size": "input_size",
    "labels": "classes",
}

_TEMPLATES = {
    "missing": "is required",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
    "too_short": "needs at least {min_length} entries",
    "too_long": "can have at most {max_length} entries",
    "string_too_long": "can have at most {max_length} characters",
    "string_pattern_mismatch": "must match {pattern}",
    **dict.fromkeys(("int_parsing", "int_type", "int_from_float"), "must be a whole number"),
    **dict.fromkeys(("float_parsing", "float_type"), "must be a number"),
    **dict.fromkeys(("bool_parsing", "bool_type"), "must be true or false"),
    **dict.fromkeys(("list_type", "tuple_type"), "must be a list"),
    **dict.fromkeys(("model_type", "model_attributes_type", "dict_type"), "must be an object"),
    "string_type": "must be text",
}
_MISSING = {"data": "add the data to train on: its classes and items (or a manifest file)"}


def _messages(error: ValidationError, root: type[BaseModel] | None = None) -> dict[str, str]:
    """Pydantic's errors as {field path: student message}; the first message per field wins."""
    messages: dict[str, str] = {}
    for item in error.errors():
        loc = item["loc"]
        if loc and loc[0] in SPECS and root is not None and issubclass(root, JobSpec):
            loc = loc[1:]  # the union's tag: the kind, which chose `root`
        if item["type"] == "extra_forbidden":  # the last part is the unknown name, never a tag
            parts, parent = _clean_loc(loc[:-1], root or JobSpec, holder=True)
            parts.append(str(loc[-1]))
        else:
            parts, parent = _clean_loc(loc, root or JobSpec)
        ctx = item.get("ctx", {})
        if item["type"] == "spec_problems":
            pairs = [
                (".".join(filter(None, [*parts, field])), text) for field, text in ctx["problems"]
            ]
        else:
            pairs = [(".".join(parts), _message(item, parts, parent))]
        for field, text in pairs:
            messages.setdefault(field or "spec", text)
    return messages


def _message(item: Any, parts: list[str], parent: type[BaseModel] | None) -> str:
    kind, ctx, value = item["type"], item.get("ctx", {}), item["input"]
    if kind == "extra_forbidden":
        return _unknown_setting(parts[-1], parent)
    if kind == "missing" and ".".join(parts) in _MISSING:
        return _MISSING[".".join(parts)]
    if kind == "literal_error" and parts == ["spec_version"]:
        return f"this spec is for version {value}; this trainer reads version {SPEC_VERSION}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'|(\d+)", ctx.get("expected", ""))
        options = [quoted or number for quoted, number in choices]
        expected = ctx.get("expected", "")
        text = f"must be {expected}" if len(options) == 2 else f"must be one of {expected}"
        close = difflib.get_close_matches(str(value).lower(), options, n=1, cutoff=0.6)
        return f"{text} (did you mean '{close[0]}'?)" if close else text
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "int_parsing_size":  # 1e23: past any whole number a setting takes
        bound = _upper_bound(parent, parts[-1]) if parts else None
        return f"must be at most {bound}" if bound is not None else "is far too large"
    if kind in _TEMPLATES:
        return _TEMPLATES[kind].format(**{k: _number(v) for k, v in ctx.items()})
    return str(item["msg"])


def _number(value: Any) -> Any:
    """1.0 → 1, so bounds read as the student wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_setting(name: str, model: type[BaseModel] | None) -> str:
    known = list(model.model_fields) if model is not None else []
    guess = _SYNONYMS.get(name.lower())
    if guess not in known:
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        guess = close[0] if close else None
    if guess:
        return f"is not a setting; did you mean '{guess}'?"
    if model in BY_TYPE.values():  # a layer: say what it does take, as the builder does
        kind = next(name for name, layer in BY_TYPE.items() if layer is model)
        takes = ", ".join(field for field in known if field != "type") or "no settings"
        return f"is not a setting; {kind} takes {takes}"
    return "is not a setting"


def _upper_bound(model: type[BaseModel] | None, name: str) -> Any:
    """The `le` bound of a field (what a number too large to read is told), or None."""
    field = model.model_fields.get(name) if model is not None else None
    pending: list[Any] = [field] if field is not None else []
    while pending:  # the field, the Annotated[...] inside `X | None`, their FieldInfo
        item = pending.pop()
        if getattr(item, "le", None) is not None:
            return item.le
        pending += getattr(item, "metadata", None) or getattr(item, "__metadata__", None) or []
        pending += get_args(getattr(item, "annotation", None))
    return None


def _clean_loc(
    loc: tuple[int | str, ...], root: type[BaseModel], *, holder: bool = False
) -> tuple[list[str], type[BaseModel] | None]:
    """Field path parts without pydantic's union tags, and the model holding the last part
    (with holder=True: the model the last part is, which holds what comes after it)."""
    parts: list[str] = []
    model: type[BaseModel] | None = root
    parent: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            parts.append(str(part))  # a list index: the model stays the item type
        elif model is None:
            continue  # a union member tag such as 'str' or 'int' inside a plain field
        elif part in BY_TYPE and part not in model.model_fields:
            model = BY_TYPE[part]  # a layer's "type": the model that validated it
        elif part not in model.model_fields and _UNION_TAG.fullmatch(part):
            continue  # a union member tag such as 'str' or 'list[Layer]'
        else:
            parts.append(part)
            parent = model
            field = model.model_fields.get(part)
            model = _submodel(field.annotation) if field is not None else None
    return parts, model if holder else parent


# How pydantic names a union's members in an error's location.
_UNION_TAG = re.compile(r"str|int|float|bool|none|.*\[.*\]|constrained-\w+")


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `list[ManifestItem]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None
