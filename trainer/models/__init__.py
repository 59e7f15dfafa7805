"""Lecture presets, the layer-list builder and torchvision wrappers; use them through
`trainer.registry`. The errors they share live here, so that no module imports another's."""


class ShapeError(ValueError):
    """A layer list whose shapes do not fit; `index` is the 0-based position of the layer."""

    def __init__(self, index: int, label: str, message: str) -> None:
        self.index = index
        self.label = label
        self.message = message
        super().__init__(f"layer {index + 1} ({label}): {message}")


class WeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but are not in the local cache (nothing is downloaded)."""
