"""The classifier of a transferred model: kept, reordered to this data's classes, or new.

A head's row i scores class i of the data it was trained on. Reusing it for other data is right
only when the classes are the same: then row i must move to wherever that class sits in the new
class list. When the classes differ (same count or not) the rows mean nothing for the new data,
and a kept head starts every prediction confidently wrong; the model gets a new classifier.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from trainer import export

# Why a head is new, as the started event says it (the job page words each one).
CLASSES_DIFFER = "classes_differ"  # other names (or another number of them)
CLASSES_UNKNOWN = "classes_unknown"  # the weights file does not say which classes it knew
SHAPE_DIFFERS = "shape_differs"  # same classes, but the head's input size changed


@dataclass(frozen=True)
class HeadPlan:
    """What became of the source's classifier, and why."""

    head: Literal["kept", "reordered", "new"]
    reason: str | None = None  # for "new": one of the constants above
    order: tuple[int, ...] = ()  # kept/reordered: new row i is the source's row order[i]

    def event_fields(self) -> dict[str, str | None]:
        """The fields the started event carries."""
        return {"head": self.head, "head_reason": self.reason}


def plan_head(source: Sequence[str] | None, target: Sequence[str]) -> HeadPlan:
    """Keep the head for the same classes (reordered by name if needed), else a new one."""
    if source is None:
        return HeadPlan("new", CLASSES_UNKNOWN)
    if len(source) != len(target) or set(source) != set(target):
        return HeadPlan("new", CLASSES_DIFFER)
    position = {name: row for row, name in enumerate(source)}
    order = tuple(position[name] for name in target)
    return HeadPlan("kept" if list(source) == list(target) else "reordered", order=order)


def head_prefix(model: nn.Module, layer: nn.Module) -> str:
    """The state_dict prefix of one submodule ("4" for a Sequential's fifth layer)."""
    return next(name for name, module in model.named_modules() if module is layer)


def load_transfer_source(
    model: nn.Module, head: nn.Linear, path: str, classes: Sequence[str]
) -> HeadPlan:
    """Load a checkpoint's backbone into `model` and decide its classifier `head` by class name.

    The backbone must fit exactly (`export.WeightsMismatch` otherwise). Unless the source was
    trained on the same classes, the head starts new, at zero.
    """
    prefix = head_prefix(model, head)
    keys = {f"{prefix}.{name}": name for name in head.state_dict()}  # weight (and bias)
    export.load_safetensors(model, path, skip=keys)
    plan = plan_head(export.source_classes(path), classes)
    stored = export.load_tensors(path, keys) if plan.head != "new" else {}
    own = head.state_dict()
    if plan.head != "new" and (
        set(stored) != set(keys)
        or any(stored[key].shape != own[name].shape for key, name in keys.items())
    ):
        plan = HeadPlan("new", SHAPE_DIFFERS)
    if plan.head == "new":
        _start_at_zero(head)
        return plan
    rows = torch.tensor(plan.order)
    with torch.no_grad():
        for key, name in keys.items():
            own[name].copy_(stored[key][rows])  # (classes, features) or (classes,)
    return plan


def _start_at_zero(head: nn.Linear) -> None:
    """A new head that favours no class: every image starts at 1/classes for each class.

    Not a fresh random layer: with the source's seed (every run's default is the same) the model
    builder draws exactly the head the source started from, and the source's backbone has grown
    to fit that head, so a "new" random head would again start confidently wrong.
    """
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.zero_()
