"""The kinds of problem the lectures teach, and which of them this trainer can train.

Torch-free: the web app imports this to ask what it may offer, instead of comparing strings.
A kind is trainable when it has a loop module, `trainer/loops/<kind>.py` (the loop protocol:
trainer/loops/__init__.py).
"""

import importlib.util
from functools import cache

KINDS = ("classification", "detection", "segmentation", "keypoints")

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
