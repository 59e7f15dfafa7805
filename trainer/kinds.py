"""The kinds of problem the lectures teach, and which of them this trainer can train.

Torch-free: the web app imports this to ask what it may offer, instead of comparing strings.
A kind is trainable when it has a loop module, `trainer/loops/<kind>.py` (the loop protocol:
trainer/loops/__init__.py).
"""

import importlib.util
from dataclasses import dataclass
from functools import cache

KINDS = ("classification", "detection", "segmentation", "keypoints")


@dataclass(frozen=True)
class Shape:
    """What a kind's labelled data is: the web app's datasets, studio, labelling and importers
    ask this (`shape(kind).has_masks`) instead of comparing the kind's name, so a new kind is
    one row in SHAPES.

    one_label_per_image  an image has one class (Item.category_index; ImageFolder, IDX,
                         CIFAR); else it has objects (Annotation rows, COCO annotations)
    has_masks            its objects carry regions (COCO segmentation: polygons or RLE)
    has_keypoints        its objects carry keypoints, named by their category (OKS compares)
    """

    one_label_per_image: bool = False
    has_masks: bool = False
    has_keypoints: bool = False

    @property
    def annotates_objects(self) -> bool:
        """Its images have objects (boxes, and masks or keypoints where the kind has them)."""
        return not self.one_label_per_image

    @property
    def boxes_only(self) -> bool:
        """Its objects are boxes and nothing more (what YOLO and Pascal VOC files hold)."""
        return self.annotates_objects and not (self.has_masks or self.has_keypoints)


SHAPES: dict[str, Shape] = {
    "classification": Shape(one_label_per_image=True),
    "detection": Shape(),
    "segmentation": Shape(has_masks=True),
    "keypoints": Shape(has_keypoints=True),
}


def shape(kind: str) -> Shape:
    """The kind's shape; a kind this trainer does not know (or none: rows older than kinds)
    reads as classification's."""
    return SHAPES.get(kind or "", SHAPES["classification"])


# The flat figures a finished job of each kind has (Job.metrics in the web app; the API's
# "metrics"), and the one a leaderboard or an assignment ranks by (higher is better).
FIGURES: dict[str, tuple[str, ...]] = {
    "classification": (
        "val_accuracy",
        "test_accuracy",
        "val_loss",
        "test_loss",
        "best_val_acc",
        "kfold_mean",
        "kfold_std",
    ),
    "detection": (
        "val_map50",
        "val_map",
        "test_map50",
        "test_map",
        "map50",
        "map",
        "best_val_map50",
    ),
    "segmentation": (
        "val_miou",
        "test_miou",
        "miou",
        "dice",
        "pixel_accuracy",
        "val_dice",
        "test_dice",
        "val_loss",
        "test_loss",
        "best_val_miou",
    ),
    "keypoints": (
        "val_pck",
        "test_pck",
        "pck",
        "oks_ap",
        "val_oks_ap",
        "test_oks_ap",
        "val_loss",
        "test_loss",
        "best_val_pck",
    ),
}
PRIMARY = {
    "classification": "test_accuracy",
    "detection": "test_map50",
    "segmentation": "test_miou",
    "keypoints": "test_pck",
}

# What an epoch event carries besides epoch, fold, lr, seconds and images_per_s.
EPOCH_FIGURES: dict[str, tuple[str, ...]] = {
    "classification": ("train_loss", "train_acc", "val_loss", "val_acc"),
    "detection": (
        "train_loss",
        "train_heatmap",
        "train_size",
        "train_offset",
        "val_loss",
        "val_map50",
        "val_map",
    ),
    "segmentation": (
        "train_loss",
        "train_ce",
        "train_dice",
        "val_loss",
        "val_miou",
        "val_dice",
        "val_pixel_accuracy",
    ),
    "keypoints": ("train_loss", "val_loss", "val_pck", "val_oks_ap"),
}


@cache
def trainable() -> tuple[str, ...]:
    """The kinds with a loop module, in lecture order."""
    return tuple(k for k in KINDS if importlib.util.find_spec(f"trainer.loops.{k}") is not None)


def can_train(kind: str) -> bool:
    return kind in trainable()
