"""Comparison groups from the Train page: the settings one may compare, and the typed values
read into one spec per run."""

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from trainer import catalog, limits  # torch-free
from webapp.jobs.launch_form import TrainForm


@dataclass(frozen=True)
class Variable:
    """A setting a group compares: the spec path it sets and how a typed value is read."""

    key: str
    path: str
    label: Any
    example: str
    help: Any = ""


# fmt: off
COMPARE = {
    v.key: v
    for v in (
        Variable("optimizer", "optimizer", gettext_lazy("Optimizer"), "sgd, adam, adamw"),
        Variable("augmentation", "augmentation.preset", gettext_lazy("Augmentation on/off"),
                 "off, on", gettext_lazy(
            "Compares no augmentation with the lecture's (rotation 45°, shear 0.3, zoom 0.4, "
            "flip).")),
        Variable("dropout", "model", gettext_lazy("Dropout rate"), "0, 0.25, 0.5", gettext_lazy(
            "Sets the rate of every Dropout layer of the model built from layers.")),
        Variable("model", "model", gettext_lazy("Model"), "simple_cnn, mlp_keras, logistic"),
        Variable("lr", "lr", gettext_lazy("Learning rate"), "0.1, 0.01, 0.001"),
        Variable("batch_size", "batch_size", gettext_lazy("Batch size"), "32, 64, 128"),
    )
}
# fmt: on
ON_OFF = {"on": "lecture", "off": "none", "オン": "lecture", "オフ": "none"}


def group_values(form: TrainForm) -> tuple[Variable, dict, list] | None:
    """The variable, the base spec and the values of a "compare values of one setting" group."""
    variable = COMPARE.get(form.values["compare_variable"])
    if variable is None:
        form.add_error("compare_variable", _("Choose one of the options."))
        return None
    words = [w for w in re.split(r"[\s,、，]+", form.values["compare_values"]) if w]
    values: list = []
    for word in words:
        value = _group_value(form, variable, word)
        if value is None:
            return None
        if value not in values:
            values.append(value)
    if not 2 <= len(values) <= 6:
        form.add_error("compare_values", _("Give between 2 and 6 different values."))
        return None
    base = dict(form.spec)
    source = (base.get("transfer") or {}).get("source", "")
    if variable.key == "model" and source.startswith("job:"):
        form.add_error(
            "compare_values",
            _("An earlier run fits only its own model: compare models without that transfer."),
        )
        return None
    if variable.key == "augmentation":
        base.pop("augmentation", None)
    if variable.key == "dropout":
        if not isinstance(base["model"], list) or not any(
            str(layer.get("type", "")).lower() == "dropout" for layer in base["model"]
        ):
            form.add_error(
                "compare_variable",
                _("Dropout can be compared for a model built from layers with a Dropout layer."),
            )
            return None
        values = [
            [{**layer, "rate": rate} if layer["type"].lower() == "dropout" else layer
             for layer in base["model"]]
            for rate in values
        ]  # fmt: skip
    return variable, base, values


def _group_value(form: TrainForm, variable: Variable, word: str):
    word = word.strip()
    wrong = _("“%(value)s” is not a value of this setting; for example: %(example)s") % {
        "value": word,
        "example": variable.example,
    }
    try:
        if variable.key == "optimizer" and word.lower() in ("sgd", "adam", "adamw"):
            return word.lower()
        if variable.key == "augmentation" and word.lower() in ON_OFF:
            return ON_OFF[word.lower()]
        if variable.key == "model" and word in catalog.names():
            return word
        if variable.key == "lr" and 0 < float(word) <= limits.MAX_LR:
            return float(word)
        if variable.key == "dropout" and 0 <= float(word) < 1:
            return float(word)
        if variable.key == "batch_size" and 1 <= int(word) <= limits.MAX_BATCH_SIZE:
            return int(word)
    except ValueError:
        pass
    form.add_error("compare_values", wrong)
    return None
