"""Each kind's training defaults (its recipe, `JobSpec.RECIPE`): a spec that leaves them out gets
them, the Train page starts from them, and the page's bounds are the kind's own schema's."""

import re
from html import unescape

import pytest
from django.http import QueryDict

from trainer import catalog
from trainer.spec import SPECS, load_spec, spec_class
from webapp.datasets.models import Category, Dataset
from webapp.jobs import launch_form, spec_check

pytestmark = pytest.mark.django_db

KINDS = list(SPECS)
OTHER_KINDS = [kind for kind in KINDS if kind != "classification"]
# The settings a recipe gives: the Train page's numbers and choices every kind shares.
RECIPE_SETTINGS = ("optimizer", "lr", "weight_decay", "schedule", "batch_size", "epochs")


def _data(kind: str) -> dict:
    keypoints = {"names": ["a", "b"], "skeleton": [[1, 2]]} if kind == "keypoints" else None
    return spec_check.placeholder_data(3, kind, keypoints)


def _defaults(kind: str) -> dict:
    fields = spec_class(kind).model_fields
    return {name: fields[name].default for name in RECIPE_SETTINGS}


def test_classification_keeps_the_lectures_defaults():
    assert spec_class("classification").RECIPE == {}
    assert _defaults("classification") == {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "schedule": "none",
        "batch_size": 64,
        "epochs": 5,
    }
    values = launch_form.initial("classification").values
    assert {name: values[name] for name in RECIPE_SETTINGS} == _defaults("classification")
    assert launch_form.kind_settings("classification") is launch_form.SETTINGS


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_a_kind_declares_its_own_recipe_within_the_shared_bounds(kind):
    recipe = spec_class(kind).RECIPE
    assert set(recipe) == set(RECIPE_SETTINGS)
    assert _defaults(kind) == recipe
    assert recipe != {name: _defaults("classification")[name] for name in recipe}
    # The recipe's values are valid settings: given explicitly, the spec accepts them.
    spec = load_spec({"kind": kind, "data": _data(kind), **recipe}, check_registry=False)
    assert {name: getattr(spec, name) for name in recipe} == recipe
    # Its bounds and explanation are the shared field's: only the default differs.
    for name in recipe:
        shared = spec_class("classification").model_fields[name]
        own = spec_class(kind).model_fields[name]
        assert own.metadata == shared.metadata and own.description == shared.description, name
        assert own.annotation == shared.annotation, name


@pytest.mark.parametrize("kind", KINDS)
def test_a_spec_with_only_data_trains_with_the_kinds_recipe(kind):
    spec = load_spec({"kind": kind, "data": _data(kind)}, check_registry=False)
    assert {name: getattr(spec, name) for name in RECIPE_SETTINGS} == _defaults(kind)
    assert spec.model == catalog.default_for(kind)


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_an_empty_api_spec_is_stored_without_settings_and_runs_with_the_recipe(world, kind):
    dataset = _dataset(world, kind)
    stored, problems = spec_check.validate_job(world.alice, dataset, {})
    assert problems == {}
    assert stored == {"kind": kind, "model": catalog.default_for(kind)}
    # What the worker loads: the stored spec and the dataset's items.
    spec = load_spec({**stored, "data": _data(kind)}, check_registry=False)
    assert {name: getattr(spec, name) for name in RECIPE_SETTINGS} == spec_class(kind).RECIPE


@pytest.mark.parametrize("kind", KINDS)
def test_the_train_pages_initial_values_are_the_kinds_spec_defaults(kind):
    values = launch_form.initial(kind).values
    fields = spec_class(kind).model_fields
    for setting in launch_form.HYPER:
        if setting.kind == "bool" or not setting.for_kind(kind):
            continue
        if "." in setting.path:  # early_stopping.patience: off by default, its own default
            continue
        assert values[setting.name] == fields[setting.path].default, (kind, setting.name)


@pytest.mark.parametrize("kind", KINDS)
def test_the_default_form_submits_a_spec_that_trains_with_the_recipe(kind):
    form = launch_form.read(_post(kind), {}, kind)
    assert form.errors == {}
    recipe = spec_class(kind).RECIPE
    # The recipe is written out: the run says what it trained with even if it changes later.
    assert {name: form.spec[name] for name in recipe} == recipe
    spec = load_spec({**form.spec, "kind": kind, "data": _data(kind)}, check_registry=False)
    assert {name: getattr(spec, name) for name in RECIPE_SETTINGS} == _defaults(kind)


def test_a_setting_changed_back_to_the_shared_default_is_kept_not_replaced_by_the_recipe():
    # On a detector's page, weight decay 0 and a constant rate are the student's choice; they
    # must not be dropped as "defaults" and come back as the recipe's 1e-4 and one-cycle.
    form = launch_form.read(_post("detection", weight_decay="0", schedule="none"), {}, "detection")
    assert form.errors == {}
    assert form.spec["weight_decay"] == 0 and form.spec["schedule"] == "none"
    spec = load_spec({**form.spec, "kind": "detection", "data": _data("detection")})
    assert spec.weight_decay == 0 and spec.schedule == "none"


@pytest.mark.parametrize("kind", KINDS)
def test_the_pages_bounds_are_the_kinds_schema(kind):
    for name, setting in launch_form.kind_settings(kind).items():
        schema = launch_form.schema_property(setting.path, kind)
        if schema is None or not setting.for_kind(kind):
            continue  # another kind's setting: never on this kind's page
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        assert (setting.low, setting.high) == (low, high), (kind, name)
        assert setting.above == ("exclusiveMinimum" in schema), (kind, name)
    # A kind that pins a classification-only setting: its page's bound is the pin, not 20.
    if kind != "classification":
        assert launch_form.kind_settings(kind)["kfold"].high == 0
        assert launch_form.kind_settings(kind)["label_smoothing"].high == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_train_page_shows_the_kinds_recipe_and_bounds(world, kind):
    dataset = _dataset(world, kind)
    page = world.client("alice").get(f"/datasets/{dataset.pk}/train/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    recipe = _defaults(kind)
    for name in ("lr", "weight_decay", "batch_size", "epochs"):
        tag = re.search(rf'<input type="number" name="{name}"[^>]*>', html)
        assert tag, name
        value = float(unescape(re.search(r'value="([^"]*)"', tag.group(0)).group(1)))
        assert value == pytest.approx(recipe[name]), (kind, name)
        setting = launch_form.kind_settings(kind)[name]
        high = re.search(r' max="([^"]*)"', tag.group(0))
        assert float(high.group(1)) == setting.high, (kind, name)
    for name in ("optimizer", "schedule"):
        select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
        assert re.search(rf'<option value="{recipe[name]}" selected>', select), (kind, name)


# --- helpers ------------------------------------------------------------------------------------


def _dataset(world, kind: str) -> Dataset:
    """A ready dataset of `kind` (no images: the page and the checks need none)."""
    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name=kind, kind=kind, status="ready", head=1
    )
    extra = {"keypoints": ["a", "b"], "skeleton": [[1, 2]]} if kind == "keypoints" else {}
    Category.objects.create(dataset=dataset, index=0, name="thing", valid_from=1, **extra)
    return dataset


def _post(kind: str, **fields) -> QueryDict:
    """The Train page's initial form for `kind` as the browser submits it, some fields changed."""
    data = QueryDict(mutable=True)
    for name, value in {**launch_form.initial(kind).values, **fields}.items():
        if value is True:
            data[name] = "1"
        elif value not in (False, None):
            data[name] = str(value)
    return data


def test_the_api_schema_names_every_kinds_default_of_a_recipe_setting():
    from trainer.spec import SPECS
    from webapp.api.job_schemas import JobSpecSettings

    properties = JobSpecSettings.model_json_schema()["properties"]
    for name in ("epochs", "lr", "batch_size", "optimizer", "schedule"):
        description = properties[name]["description"]
        for kind, spec in SPECS.items():
            assert f"{kind} {spec.model_fields[name].default}" in description, (name, kind)
    epochs = SPECS["detection"].model_fields["epochs"]
    assert properties["epochs"]["maximum"] == epochs.metadata[-1].le  # bounds kept
