"""The Train page's form and the trainer's spec: settings with their explanations, parsing, and
every problem named by the field the student typed it in.

A setting's bounds, default, choices and one-line explanation are the spec's own (its JSON
schema: minimum, maximum, default, enum, description and the choices' x-enumDescriptions), read
here rather than retyped, so the form can never offer what the trainer refuses nor explain it
otherwise than the API does; the English description is the msgid of the reader's language.
"""

import json
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from trainer import catalog, limits  # torch-free
from trainer.spec import LECTURE_AUGMENTATION, SPECS, spec_class  # pydantic only: no torch
from webapp.jobs import spec_check
from webapp.jobs.layer_builder import MAX_LAYERS

MODES = ("scratch", "feature_extraction", "fine_tuning")
STARTER_LAYERS = [
    {"type": "Conv2d", "filters": 16, "kernel": 3, "stride": 1, "padding": "same",
     "activation": "relu"},
    {"type": "MaxPool", "size": 2, "stride": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 64, "activation": "relu"},
    {"type": "Dropout", "rate": 0.25},
]  # fmt: skip
SCHEMA_KIND = "classification"  # whose schema SETTINGS come from; kind_settings: a kind's own
_FROM_SCHEMA = object()


@cache
def spec_schema(kind: str = SCHEMA_KIND) -> dict:
    """The JSON schema of a kind's spec (pydantic's), as the OpenAPI document shows it."""
    return spec_class(kind).model_json_schema()


def schema_property(path: str, kind: str = SCHEMA_KIND) -> dict | None:
    """The schema of one spec field ("lr", "augmentation.zoom"), optional values unwrapped;
    None when the kind's spec has no such field."""
    schema = spec_schema(kind)
    node: dict | None = schema
    for part in path.split("."):
        node = _resolve(schema, node).get("properties", {}).get(part) if node else None
    return _resolve(schema, node) if node is not None else None


def _resolve(schema: dict, node: dict) -> dict:
    """A $ref followed, and of "X or null" the X (with the outer default kept)."""
    choices = [n for n in node.get("anyOf", ()) if n.get("type") != "null"]
    if len(choices) == 1:
        node = {**choices[0], **{k: v for k, v in node.items() if k != "anyOf"}}
    ref = node.get("$ref")
    if ref:
        target = schema["$defs"][ref.rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


@dataclass(frozen=True)
class Setting:
    """One form field that fills one spec field, with its bounds and a one-line explanation."""

    name: str
    path: str
    label: Any
    kind: str  # "int", "float", "choice" or "bool"
    default: Any = None
    low: float | None = None
    high: float | None = None
    above: bool = False  # the low bound itself is not allowed
    below: bool = False  # the high bound itself is not allowed
    values: tuple = ()  # a choice's values (the schema's enum)
    description: str = ""  # the schema's, in English: the msgid of `help`
    labels: tuple = ()  # (value, English label) pairs: the schema's x-enumDescriptions
    defaults: tuple = ()  # (setting, default) pairs a label may name in braces ("{gamma}")
    of: str = SCHEMA_KIND  # the kind whose schema has it; SCHEMA_KIND: every kind's setting

    @property
    def help(self) -> str:
        """The one-line explanation in the reader's language."""
        return _(self.description) if self.description else ""

    @property
    def choices(self) -> tuple:
        """(value, label) pairs in the reader's language, the settings a label names filled in."""
        labels, defaults = dict(self.labels), dict(self.defaults)
        return tuple(
            (value, _(labels[value]).format_map(defaults) if value in labels else value)
            for value in self.values
        )

    def for_kind(self, kind: str) -> bool:
        """Whether a spec of `kind` may have this setting at all."""
        return self.of in (SCHEMA_KIND, kind)

    def range_message(self) -> str:
        values = {"low": _number(self.low), "high": _number(self.high)}
        if self.high is None:
            return _("Enter a value of at least %(low)s.") % values
        if self.above:
            return _("Enter a value above %(low)s and at most %(high)s.") % values
        if self.below:
            return _("Enter a value of at least %(low)s and below %(high)s.") % values
        return _("Enter a value from %(low)s to %(high)s.") % values


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _setting(name, path, label, kind, default=_FROM_SCHEMA, of=SCHEMA_KIND) -> Setting:
    """A setting whose bounds, choices, explanation (and default, unless given) are the spec
    schema's (of the kind `of`, for a setting only one kind has; the Train page shows a setting
    where it applies)."""
    schema = schema_property(path, of) or {}
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    labels = schema.get("x-enumDescriptions", {})
    defaults = _label_defaults(of)
    for text in labels.values():
        text.format_map(dict(defaults))  # a label names settings that exist (KeyError at import)
    return Setting(
        name,
        path,
        label,
        kind,
        schema.get("default") if default is _FROM_SCHEMA else default,
        low,
        high,
        above="exclusiveMinimum" in schema,
        below="exclusiveMaximum" in schema,
        values=tuple(schema.get("enum", ())),
        description=schema.get("description", ""),
        labels=tuple(labels.items()),
        defaults=defaults,
        of=of,
    )


def _label_defaults(kind: str) -> tuple:
    """(setting, default) pairs of a kind's numbers, which a choice's label may name in braces
    (the step schedule's "×{gamma} every {step_size} epochs")."""
    return tuple(
        (key, _number(field["default"]))
        for key, field in spec_schema(kind)["properties"].items()
        if isinstance(field.get("default"), int | float) and not isinstance(field["default"], bool)
    )


# fmt: off
HYPER = (
    _setting("epochs", "epochs", gettext_lazy("Epochs"), "int"),
    _setting("batch_size", "batch_size", gettext_lazy("Batch size"), "int"),
    _setting("optimizer", "optimizer", gettext_lazy("Optimizer"), "choice"),
    _setting("lr", "lr", gettext_lazy("Learning rate"), "float"),
    _setting("momentum", "momentum", gettext_lazy("Momentum"), "float"),
    _setting("weight_decay", "weight_decay", gettext_lazy("Weight decay"), "float"),
    _setting("schedule", "schedule", gettext_lazy("Learning-rate schedule"), "choice"),
    _setting("input_size", "input_size", gettext_lazy("Input size (pixels)"), "int"),
    _setting("early_stopping", "early_stopping", gettext_lazy("Early stopping"), "bool", False),
    _setting("patience", "early_stopping.patience", gettext_lazy("Patience (epochs)"), "int"),
    _setting("label_smoothing", "label_smoothing", gettext_lazy("Label smoothing"), "float"),
    _setting("seed", "seed", gettext_lazy("Random seed"), "int"),
    _setting("kfold", "kfold", gettext_lazy("k-fold cross-validation"), "int"),
    _setting("width", "width", gettext_lazy("U-Net width (channels)"), "int", of="segmentation"),
    _setting("dice_weight", "dice_weight", gettext_lazy("Dice loss weight"), "float",
             of="segmentation"),
    _setting("sigma", "sigma", gettext_lazy("Heat-map σ (pixels)"), "float", of="keypoints"),
)
# Switched on, augmentation starts from the lecture's settings (the trainer's "lecture" preset).
AUGMENT = (
    _setting("aug_rotation", "augmentation.rotation", gettext_lazy("Rotation (°)"), "float",
             LECTURE_AUGMENTATION["rotation"]),
    _setting("aug_shear", "augmentation.shear", gettext_lazy("Shear"), "float",
             LECTURE_AUGMENTATION["shear"]),
    _setting("aug_zoom", "augmentation.zoom", gettext_lazy("Zoom"), "float",
             LECTURE_AUGMENTATION["zoom"]),
    _setting("aug_hflip", "augmentation.hflip", gettext_lazy("Horizontal flip"), "bool",
             LECTURE_AUGMENTATION["hflip"]),
    _setting("aug_vflip", "augmentation.vflip", gettext_lazy("Vertical flip"), "bool",
             LECTURE_AUGMENTATION.get("vflip", False)),
)
# fmt: on
SETTINGS = {s.name: s for s in (*HYPER, *AUGMENT)}
FIELD_OF_PATH = {s.path: s.name for s in SETTINGS.values()}
FIELD_OF_PATH.update(
    {
        "transfer.source": "transfer_source",
        "transfer.mode": "transfer_mode",
        "transfer": "transfer_source",
        "early_stopping": "early_stopping",
        "augmentation": "augment",
        "values": "compare_values",
    }
)


@cache
def kind_settings(kind: str) -> dict[str, Setting]:
    """SETTINGS as the Train page of a dataset of `kind` has them: bounds from that kind's own
    schema, and the hyperparameters' defaults too (the kind's recipe, `JobSpec.RECIPE`), so the
    page starts where a spec that leaves them out would. Switches keep their own start (early
    stopping off, augmentation at the lecture's values)."""
    if kind == SCHEMA_KIND or kind not in SPECS:
        return SETTINGS
    return {name: _in_kind(setting, kind) for name, setting in SETTINGS.items()}


def _in_kind(setting: Setting, kind: str) -> Setting:
    own = schema_property(setting.path, kind) if setting.for_kind(kind) else None
    if own is None:
        return setting  # another kind's setting: never shown nor read for this kind
    recipe = setting.name in {s.name for s in HYPER} and setting.kind != "bool"
    return replace(
        setting,
        default=own.get("default") if recipe else setting.default,
        low=own.get("minimum", own.get("exclusiveMinimum")),
        high=own.get("maximum", own.get("exclusiveMaximum")),
        above="exclusiveMinimum" in own,
        below="exclusiveMaximum" in own,
        description=own.get("description", setting.description),
        values=tuple(own.get("enum", setting.values)),
        labels=tuple(own.get("x-enumDescriptions", dict(setting.labels)).items()),
        defaults=_label_defaults(kind),
    )


def hyper(kind: str) -> list[Setting]:
    """HYPER for a dataset of `kind` (kind_settings)."""
    return [kind_settings(kind)[s.name] for s in HYPER]


def augment(kind: str) -> list[Setting]:
    """AUGMENT for a dataset of `kind` (kind_settings)."""
    return [kind_settings(kind)[s.name] for s in AUGMENT]


@dataclass
class TrainForm:
    """What the student typed (kept as typed), the spec made of it, and the problems by field."""

    values: dict[str, Any]
    spec: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def add_spec_errors(self, problems: dict[str, str]) -> None:
        """Problems keyed "spec.<path>" (or "values", "dataset"), shown at the form's fields."""
        for key, message in problems.items():
            self.add_error(self.field_for(key), message)

    def field_for(self, key: str) -> str:
        path = key.removeprefix("spec.")
        if path == "model" or path.startswith("model."):
            return {"layers": "layers", "torchvision": "torchvision"}.get(
                self.values.get("model_source"), "preset"
            )
        return FIELD_OF_PATH.get(path, FIELD_OF_PATH.get(path.split(".")[0], "__all__"))


# The Train page's model tabs ("model_source"): the lecture's own models, torchvision's, and
# the layer builder, whose lists build classifiers only (trainer/models/layers.py).
OWN_FAMILIES = ("preset", "detector")
LAYER_KINDS = ("classification",)


def model_choices(kind: str, source: str) -> list[catalog.ModelEntry]:
    """The catalog's models of `kind` that one tab ("preset" or "torchvision") offers."""
    families = OWN_FAMILIES if source == "preset" else (source,)
    return [entry for entry in catalog.models(kind) if entry.family in families]


def model_sources(kind: str) -> list[str]:
    """The model tabs a dataset of `kind` offers, in the page's order."""
    sources = [source for source in ("preset", "torchvision") if model_choices(kind, source)]
    return sources + (["layers"] if kind in LAYER_KINDS else [])


def initial(kind: str = "classification") -> TrainForm:
    """The form as a new Train page shows it for a dataset of `kind`: its default model chosen."""
    values: dict[str, Any] = {s.name: s.default for s in kind_settings(kind).values()}
    values["augment"] = False
    first = {source: model_choices(kind, source) for source in ("preset", "torchvision")}
    default = next((entry.name for entry in catalog.models(kind) if entry.default), "")
    source = next((s for s, entries in first.items() if default in {e.name for e in entries}), "")
    values.update(
        model_source=source or next(iter(model_sources(kind)), "preset"),
        preset=default if source == "preset" else _first_name(first["preset"]),
        torchvision=default if source == "torchvision" else _first_name(first["torchvision"]),
        layers=json.dumps(STARTER_LAYERS),
        transfer_source="none",
        transfer_mode="scratch",
        compare_variable="optimizer",
        compare_values="sgd, adam, adamw",
    )
    return TrainForm(values)


def _first_name(entries: list[catalog.ModelEntry]) -> str:
    return entries[0].name if entries else ""


def read(post, runs: dict[str, Any], kind: str = "classification") -> TrainForm:
    """Parse a submitted form into a spec for a dataset of `kind`; `runs` maps "job:<id>" to the
    runs one may start from."""
    form = initial(kind)
    switches = {s.name for s in SETTINGS.values() if s.kind == "bool"} | {"augment"}
    for name in form.values:
        if name in switches:
            form.values[name] = post.get(name) in ("1", "on", "true")
        elif name in post:
            form.values[name] = post.get(name, "").strip()
    spec: dict[str, Any] = {"model": _model(form, kind)}
    skipped = {"early_stopping", "patience"}  # read below, like momentum, only when they apply
    if form.values["optimizer"] != "sgd":
        skipped.add("momentum")
    settings = kind_settings(kind)  # the kind's bounds and defaults
    for setting in hyper(kind):
        if not setting.for_kind(kind):
            continue  # another kind's setting (a U-Net's width on a classifier's page)
        value = None if setting.name in skipped else _parse(form, setting)
        if value is not None:
            spec[setting.path] = value
    if form.values["early_stopping"]:
        spec["early_stopping"] = {"patience": _parse(form, settings["patience"])}
    if form.values["augment"]:
        spec["augmentation"] = {s.path.split(".")[1]: _parse(form, s) for s in augment(kind)}
    spec = _drop_defaults(spec, kind)
    spec.update(_transfer(form, spec, runs))
    form.spec = spec
    return form


def _model(form: TrainForm, kind: str):
    source = form.values["model_source"]
    sources = model_sources(kind) or ["preset"]  # a kind without models: "choose a model"
    if source not in sources:
        form.values["model_source"] = source = sources[0]
    if source == "layers":
        try:
            layers = json.loads(form.values["layers"] or "[]")
        except json.JSONDecodeError:
            layers = None
        if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
            form.add_error("layers", _("The layer list could not be read; reload the page."))
            return []
        if not layers:
            form.add_error("layers", _("Add at least one layer."))
        elif len(layers) > MAX_LAYERS:
            form.add_error("layers", _("Use at most %(n)s layers.") % {"n": MAX_LAYERS})
        return layers
    name = form.values[source]
    if name not in {entry.name for entry in model_choices(kind, source)}:
        form.add_error(source, _("Choose a model from the list."))
    return name


def kfold_message() -> str:
    """What a k-fold count of 1 (or above trainer.limits.MAX_KFOLD) is told."""
    return _("Enter 0 (no cross-validation) or a number from 2 to %(max)s.") % {
        "max": limits.MAX_KFOLD
    }


def _parse(form: TrainForm, setting: Setting):
    """One setting's value (None when left empty where that is allowed, or when it is wrong)."""
    raw = form.values[setting.name]
    if setting.kind == "bool":
        return bool(raw)
    if setting.kind == "choice":
        if raw not in setting.values:
            form.add_error(setting.name, _("Choose one of the options."))
            return None
        return raw
    if raw in ("", None):
        if setting.default is None:
            return None
        form.add_error(setting.name, _("Enter a value."))
        return None
    try:
        value = int(raw) if setting.kind == "int" else float(raw)
    except (TypeError, ValueError):
        whole = setting.kind == "int"
        form.add_error(setting.name, _("Enter a whole number.") if whole else _("Enter a number."))
        return None
    if setting.name == "kfold" and value == 1:
        form.add_error("kfold", kfold_message())
        return None
    too_low = value <= setting.low if setting.above else value < setting.low
    too_high = setting.high is not None and (
        value >= setting.high if setting.below else value > setting.high
    )
    if too_low or too_high:
        form.add_error(setting.name, setting.range_message())
        return None
    return value


def _drop_defaults(spec: dict, kind: str = SCHEMA_KIND) -> dict:
    """Keep the spec short: what the student chose, without the kind's own defaults; a kind's
    recipe is written out, so the run says what it trained with if the recipe changes later."""
    keep = {"model", "epochs", "batch_size", "optimizer", "lr"}
    keep |= set(SPECS[kind].RECIPE if kind in SPECS else ())
    if spec.get("optimizer") == "sgd":
        keep.add("momentum")
    defaults = {s.path: s.default for s in hyper(kind)}
    return {
        key: value
        for key, value in spec.items()
        if key in keep or key not in defaults or value != defaults[key]
    }


def _transfer(form: TrainForm, spec: dict, runs: dict[str, Any]) -> dict:
    source, mode = form.values["transfer_source"], form.values["transfer_mode"]
    if mode not in MODES:
        form.add_error("transfer_mode", _("Choose one of the options."))
        return {}
    if source == "none":
        if mode != "scratch":
            form.add_error(
                "transfer_mode",
                _("Choose ImageNet or an earlier run to transfer from, or train from scratch."),
            )
        return {}
    if source.startswith("job:"):
        run = runs.get(source)
        if run is None:
            form.add_error("transfer_source", _("Choose one of the listed earlier runs."))
            return {}
        if spec_check.model_of(run.spec, spec_check.spec_kind(run.spec)) != spec.get("model"):
            form.add_error(
                "transfer_source",
                _(
                    "Run %(id)s trained another model; choose that model above, or a run of the "
                    "model you chose."
                )
                % {"id": run.pk},
            )
    elif source not in ("imagenet", "coco"):  # whether the model has them: spec_check
        form.add_error("transfer_source", _("Choose one of the options."))
        return {}
    return {"transfer": {"source": source, "mode": mode}}
