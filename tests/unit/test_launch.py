"""The Train page: form → spec, who may open it and the API behind it, shapes from the trainer,
and comparison groups."""

import json
import subprocess
import sys

import pytest
from django.http import QueryDict
from django.test import Client

from tests.conftest import PERSONAS, assert_api_error
from trainer import catalog
from webapp.celery import app as celery_app
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.datasets.models import Dataset
from webapp.jobs import launch_form, layer_builder, spec_check, summaries
from webapp.jobs.models import Job, JobGroup

pytestmark = pytest.mark.django_db

LAYERS = [
    {"type": "Conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
    {"type": "MaxPool", "size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 16, "activation": "relu"},
    {"type": "Dropout", "rate": 0.2},
]


@pytest.fixture
def eager(monkeypatch):
    """Celery runs the summary task in this process (no worker in unit tests)."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def _dataset(world, owner="alice", visibility="private", sample="faces"):
    dataset = dataset_actions.copy_sample(
        world.user(owner), world.course, sample, visibility=visibility
    )
    dataset_tasks.copy_sample(dataset.pk, sample, "en")
    dataset.refresh_from_db()
    return dataset


def _post(**fields) -> QueryDict:
    """The default form as the page submits it, with some fields changed."""
    values = launch_form.initial().values
    data = QueryDict(mutable=True)
    for name, value in {**values, **fields}.items():
        if value is True:
            data[name] = "1"
        elif value not in (False, None):
            data[name] = str(value)
    return data


def _read(runs=None, **fields) -> launch_form.TrainForm:
    return launch_form.read(_post(**fields), runs or {})


def _problems(world, spec: dict) -> dict[str, str]:
    """What the one web-side check (`spec_check`) finds in a spec alice sends for her dataset."""
    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name="empty", kind="classification"
    )
    return spec_check.spec_problems(world.alice, spec, dataset)


# --- form → spec --------------------------------------------------------------------------------


def test_the_default_form_gives_a_short_spec_with_the_trainers_defaults(world):
    form = _read()
    assert form.errors == {}
    assert form.spec == {
        "model": "simple_cnn",
        "epochs": 5,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 0.001,
    }
    assert _problems(world, form.spec) == {}


def test_every_setting_reaches_the_spec(world):
    form = _read(
        preset="logistic",
        epochs="3",
        batch_size="32",
        optimizer="sgd",
        lr="0.05",
        momentum="0.8",
        weight_decay="0.0005",
        schedule="cosine",
        input_size="16",
        early_stopping=True,
        patience="3",
        label_smoothing="0.1",
        seed="7",
        kfold="5",
        augment=True,
        aug_rotation="30",
        aug_shear="0.2",
        aug_zoom="0.1",
        aug_hflip=False,
        aug_vflip=True,
    )
    assert form.errors == {}
    assert form.spec == {
        "model": "logistic",
        "epochs": 3,
        "batch_size": 32,
        "optimizer": "sgd",
        "lr": 0.05,
        "momentum": 0.8,
        "weight_decay": 0.0005,
        "schedule": "cosine",
        "input_size": 16,
        "early_stopping": {"patience": 3},
        "label_smoothing": 0.1,
        "seed": 7,
        "kfold": 5,
        "augmentation": {
            "rotation": 30.0,
            "shear": 0.2,
            "zoom": 0.1,
            "hflip": False,
            "vflip": True,
        },
    }
    assert _problems(world, form.spec) == {}


def test_switching_augmentation_on_gives_the_lecture_settings():
    spec = _read(augment=True).spec
    assert spec["augmentation"] == {
        "rotation": 45.0,
        "shear": 0.3,
        "zoom": 0.4,
        "hflip": True,
        "vflip": False,
    }


def test_momentum_is_only_read_for_sgd():
    form = _read(momentum="abc")
    assert form.errors == {} and "momentum" not in form.spec


def test_a_torchvision_model_and_a_layer_list_are_read_from_their_own_fields():
    assert _read(model_source="torchvision", torchvision="resnet18").spec["model"] == "resnet18"
    form = _read(model_source="layers", layers=json.dumps(LAYERS))
    assert form.errors == {} and form.spec["model"] == LAYERS


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"epochs": "abc"}, "epochs", "Enter a whole number."),
        ({"epochs": "0"}, "epochs", "Enter a value from 1 to 300."),
        ({"epochs": ""}, "epochs", "Enter a value."),
        ({"lr": "0"}, "lr", "Enter a value above 0 and at most 10."),
        ({"lr": "x"}, "lr", "Enter a number."),
        ({"optimizer": "sgd", "momentum": "1"}, "momentum", "at least 0 and below 1"),
        ({"batch_size": "5000"}, "batch_size", "from 1 to 4096"),
        ({"input_size": "4"}, "input_size", "from 8 to 1024"),
        ({"kfold": "1"}, "kfold", "Enter 0 (no cross-validation) or a number from 2 to 20."),
        ({"kfold": "21"}, "kfold", "from 0 to 20"),
        ({"schedule": "weekly"}, "schedule", "Choose one of the options."),
        ({"augment": True, "aug_rotation": "200"}, "aug_rotation", "from 0 to 180"),
        ({"early_stopping": True, "patience": "0"}, "patience", "from 1 to 100"),
        ({"preset": "resnet18"}, "preset", "Choose a model from the list."),
        ({"model_source": "layers", "layers": "[{"}, "layers", "could not be read"),
        ({"model_source": "layers", "layers": "[]"}, "layers", "Add at least one layer."),
        ({"transfer_mode": "fine_tuning"}, "transfer_mode", "Choose ImageNet or an earlier run"),
        ({"transfer_source": "job:999"}, "transfer_source", "listed earlier runs"),
    ],
)
def test_a_bad_value_names_its_field_and_keeps_what_was_typed(fields, field, message):
    form = _read(**fields)
    assert message in form.errors[field]
    for name, value in fields.items():
        if isinstance(value, str):
            assert form.values[name] == value


def test_spec_problems_names_every_bad_field_at_once(world):
    problems = _problems(world, {"model": "logistic", "lr": -1, "epochs": 0})
    assert set(problems) == {"spec.lr", "spec.epochs"}
    assert "unknown model" in _problems(world, {"model": "gpt"})["spec.model"].lower()
    small = _problems(world, {"model": "lenet_lecture", "input_size": 16})
    assert "32×32" in small["spec.input_size"]


def test_imagenet_is_offered_only_when_the_administrator_provided_the_weights(
    world, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = {"model": "resnet18", "transfer": {"source": "imagenet", "mode": "fine_tuning"}}
    assert not catalog.weights_available(catalog.get("resnet18"))
    assert "not on this server" in _problems(world, spec)["spec.transfer.source"]
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "resnet18-f37072fd.pth").write_bytes(b"weights")
    assert catalog.weights_available(catalog.get("resnet18"))
    assert _problems(world, spec) == {}
    preset = {"model": "simple_cnn", "transfer": {"source": "imagenet", "mode": "fine_tuning"}}
    assert "no ImageNet weights" in _problems(world, preset)["spec.transfer.source"]


def test_the_builders_layer_types_are_the_trainers():
    from trainer.models import layers

    trainer_types = {name: set(settings) for name, settings in layers._TYPES.values()}
    assert set(layer_builder.LAYER_TYPES) == set(trainer_types)
    for name, settings in layer_builder.LAYER_TYPES.items():
        assert set(settings) <= trainer_types[name], name
    order = ["Conv2d", "MaxPool", "AvgPool", "BatchNorm", "Dropout", "ReLU", "Sigmoid", "Tanh"]
    order += ["LeakyReLU", "GELU", "GlobalAvgPool", "Dense"]
    for names in (order, ["Flatten"]):
        new_layers = [{"type": name, **layer_builder.LAYER_TYPES[name]} for name in names]
        layers.build_layers(new_layers, num_classes=3, in_channels=1, input_size=32)


def test_the_web_side_of_the_train_page_never_imports_torch():
    code = (
        "import django, os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'webapp.settings'; "
        "django.setup(); import webapp.urls, webapp.jobs.launch, webapp.api.models; "
        "from trainer.spec import load_spec; from webapp.jobs import spec_check; "
        "spec_check.catalog_problems({'model': 'resnet18', 'lr': -1}); "
        "load_spec({'model': 'resnet18', 'data': {'classes': ['a'], 'items': [{'path': 'x'}]}}, "
        "check_registry=False); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- who may open the page and call the API ------------------------------------------------

PAGE = {
    "anon": 302,
    "alice": 200,
    "bob": 404,
    "carol": 404,
    "ta": 200,
    "teacher": 200,
    "other_teacher": 404,
}
HIDDEN_PAGE = {**PAGE, "alice": 403, "bob": 403, "ta": 403, "teacher": 403}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_open_the_train_page(world, persona):
    dataset = _dataset(world)
    response = world.client(persona).get(f"/datasets/{dataset.pk}/train/")
    assert response.status_code == PAGE[persona]
    if response.status_code == 200:
        assert b'id="train-form"' in response.content


@pytest.mark.parametrize("persona", PERSONAS)
def test_nobody_trains_on_a_hidden_test_set_from_the_page(world, persona):
    hidden = _dataset(world, owner="teacher", visibility="hidden_test")
    client = world.client(persona)
    assert client.get(f"/datasets/{hidden.pk}/train/").status_code == HIDDEN_PAGE[persona]
    assert (
        client.post(f"/datasets/{hidden.pk}/train/", _post()).status_code == (HIDDEN_PAGE[persona])
    )
    assert not Job.objects.exists()


API = {**PAGE, "anon": 401}
HIDDEN_API = {**API, "alice": 403, "bob": 403, "ta": 403, "teacher": 403}


def _validate(world, persona, dataset, spec):
    return Client().post(
        "/api/v1/jobs/validate",
        {"dataset": dataset.pk, "spec": spec},
        content_type="application/json",
        **world.bearer(persona),
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_validate_a_spec_for_a_dataset(world, persona):
    dataset = _dataset(world)
    hidden = _dataset(world, owner="teacher", visibility="hidden_test")
    spec = {"model": "logistic", "epochs": 1}
    assert _validate(world, persona, dataset, spec).status_code == API[persona]
    assert _validate(world, persona, hidden, spec).status_code == HIDDEN_API[persona]


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_signed_in_user_may_ask_for_a_model_summary(world, persona, eager):
    response = Client().post(
        "/api/v1/models/summary",
        {"model": "logistic", "input_size": 8, "classes": 2},
        content_type="application/json",
        **world.bearer(persona),
    )
    assert response.status_code == (401 if persona == "anon" else 200)


def test_validation_names_every_bad_field_under_spec(world):
    body = assert_api_error(
        _validate(world, "alice", _dataset(world), {"model": "logistic", "lr": 0, "kfold": 1}),
        422,
    )
    assert set(body["errors"]) == {"spec.lr", "spec.kfold"}
    ok = _validate(world, "alice", _dataset(world), {"model": "logistic", "lr": 0.01})
    assert ok.status_code == 200 and ok.json()["errors"] == {}


def test_validation_refuses_a_run_the_user_may_not_see_as_a_source(world):
    dataset = _dataset(world)
    bobs = _finished_run(world, "bob", dataset)
    spec = {"model": "logistic", "transfer": {"source": f"job:{bobs.pk}", "mode": "fine_tuning"}}
    body = assert_api_error(_validate(world, "alice", dataset, spec), 422)
    assert "spec.transfer.source" in body["errors"]
    assert _validate(world, "teacher", dataset, spec).status_code == 200


# --- shapes from the trainer --------------------------------------------------------------


def _summary(world, model, **extra):
    return Client().post(
        "/api/v1/models/summary",
        {"model": model, "input_size": 8, "classes": 10, **extra},
        content_type="application/json",
        **world.bearer("alice"),
    )


def test_a_layer_list_gets_its_shape_and_parameters_after_every_layer(world, eager):
    response = _summary(world, LAYERS)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["shape"] for row in body["rows"]] == [[8, 8, 8], [8, 4, 4], [128], [16], [16], [10]]
    assert [row["params"] for row in body["rows"]] == [80, 0, 0, 2064, 0, 170]
    assert body["parameters"] == 80 + 2064 + 170 and body["input"] == [1, 8, 8]


def test_a_layer_that_does_not_fit_is_named_with_the_shapes_before_it(world, eager):
    bad = [LAYERS[0], LAYERS[1], {"type": "Dense", "units": 4}]
    body = assert_api_error(_summary(world, bad), 422)
    assert list(body["errors"]) == ["model.2"]
    assert "Flatten" in body["errors"]["model.2"]
    assert body["index"] == 2 and [row["shape"] for row in body["rows"]] == [[8, 8, 8], [8, 4, 4]]
    unknown = assert_api_error(_summary(world, [{"type": "Conv3d"}]), 422)
    assert "model.0" in unknown["errors"]


def test_a_named_model_gets_its_summary_and_a_too_small_input_is_named(world, eager):
    body = _summary(world, "simple_cnn").json()
    assert body["parameters"] > 0 and body["rows"][-1]["shape"] == [10]
    small = assert_api_error(_summary(world, "lenet_lecture"), 422)
    assert "input_size" in small["errors"]


def test_the_summary_says_so_when_no_worker_answers(world, monkeypatch):
    def busy(*args):
        raise summaries.SummaryUnavailable

    monkeypatch.setattr(summaries, "model_summary", busy)
    assert_api_error(_summary(world, LAYERS), 503)


# --- submitting ---------------------------------------------------------------------------------


def _train(world, dataset, persona="alice", **fields):
    return world.client(persona).post(f"/datasets/{dataset.pk}/train/", _post(**fields))


def _finished_run(world, persona, dataset, spec=None):
    from django.core.files.storage import default_storage

    job = Job.objects.create(
        course=world.course,
        owner=world.user(persona),
        dataset=dataset,
        dataset_version=dataset.head,
        spec=spec or {"model": "logistic", "epochs": 1},
        status="succeeded",
        result={"test": {"accuracy": 0.9}},
    )
    path = default_storage.path(f"jobs/{job.pk}/model.safetensors")
    default_storage.save(f"jobs/{job.pk}/model.safetensors", _bytes(b"not really weights"))
    assert default_storage.exists(path)
    return job


def _bytes(data):
    from django.core.files.base import ContentFile

    return ContentFile(data)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_submitting_the_form_queues_the_job_and_opens_its_page(world):
    dataset = _dataset(world)
    response = _train(world, dataset, preset="logistic", epochs="1", input_size="8")
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.spec == {
        "kind": "classification",  # the dataset's, filled in by validate_job
        "model": "logistic",
        "epochs": 1,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 0.001,
        "input_size": 8,
    }


def test_a_refused_form_is_shown_again_with_the_message_and_what_was_typed(world):
    dataset = _dataset(world)
    response = _train(world, dataset, epochs="9999", lr="0.0123")
    assert response.status_code == 200 and not Job.objects.exists()
    html = response.content.decode()
    assert "Enter a value from 1 to 300." in html
    assert 'value="9999"' in html and 'value="0.0123"' in html


def test_a_layer_list_that_does_not_fit_is_refused_at_its_layer(world, eager):
    dataset = _dataset(world)
    bad = json.dumps([LAYERS[0], {"type": "Dense", "units": 4}])
    response = _train(world, dataset, model_source="layers", layers=bad, input_size="8")
    assert response.status_code == 200 and not Job.objects.exists()
    assert "Layer 2: Dense needs a flat input" in response.content.decode()


def test_transfer_from_an_earlier_run_of_another_model_is_refused(world):
    dataset = _dataset(world)
    run = _finished_run(world, "alice", dataset, {"model": "mlp_keras"})
    form = _read({f"job:{run.pk}": run}, transfer_source=f"job:{run.pk}", preset="logistic")
    assert "trained another model" in form.errors["transfer_source"]


def test_three_transfer_modes_become_one_group_of_three_jobs(world):
    dataset = _dataset(world)
    run = _finished_run(world, "alice", dataset)
    response = _train(
        world,
        dataset,
        action="compare_modes",
        preset="logistic",
        transfer_source=f"job:{run.pk}",
        transfer_mode="fine_tuning",
    )
    group = JobGroup.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/groups/{group.pk}/"
    jobs = list(group.jobs.order_by("pk"))
    assert [job.label for job in jobs] == ["scratch", "feature_extraction", "fine_tuning"]
    assert [job.spec["transfer"] for job in jobs] == [
        {"source": f"job:{run.pk}", "mode": mode} for mode in launch_form.MODES
    ]
    assert group.variable == "transfer.mode"


def test_comparing_the_transfer_modes_needs_a_source(world):
    response = _train(world, _dataset(world), action="compare_modes")
    assert response.status_code == 200 and not Job.objects.exists()
    assert "the three modes start from it" in response.content.decode()


@pytest.mark.parametrize(
    ("variable", "values", "labels", "path"),
    [
        ("optimizer", "sgd, adam, adamw", ["sgd", "adam", "adamw"], "optimizer"),
        ("lr", "0.1 0.01", ["0.1", "0.01"], "lr"),
        ("batch_size", "32,64", ["32", "64"], "batch_size"),
        ("augmentation", "off, on", ["none", "lecture"], "augmentation.preset"),
        ("model", "logistic, mlp_keras", ["logistic", "mlp_keras"], "model"),
    ],
)
def test_comparing_values_of_one_setting_makes_one_job_per_value(
    world, variable, values, labels, path
):
    response = _train(
        world,
        _dataset(world),
        action="compare",
        preset="logistic",
        compare_variable=variable,
        compare_values=values,
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    group = JobGroup.objects.get()
    assert group.variable == path
    assert [job.label for job in group.jobs.order_by("pk")] == labels


def test_comparing_dropout_rates_sets_every_dropout_layer(world, eager):
    response = _train(
        world,
        _dataset(world),
        action="compare",
        model_source="layers",
        layers=json.dumps(LAYERS),
        input_size="8",
        compare_variable="dropout",
        compare_values="0, 0.5",
    )
    assert response.status_code == 302
    rates = [job.spec["model"][4]["rate"] for job in Job.objects.order_by("pk")]
    assert rates == [0.0, 0.5]
    assert [job.label for job in Job.objects.order_by("pk")] == ["dropout 0.0", "dropout 0.5"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"compare_values": "sgd"}, "compare_values", "between 2 and 6"),
        ({"compare_values": "sgd, rmsprop"}, "compare_values", "“rmsprop” is not a value"),
        (
            {"compare_variable": "dropout", "compare_values": "0, 0.5"},
            "compare_variable",
            "Dropout",
        ),
        (
            {"compare_variable": "lr", "compare_values": "1,2,3,4,5,6,7"},
            "compare_values",
            "2 and 6",
        ),
    ],
)
def test_a_bad_comparison_is_refused_naming_the_field(world, fields, field, message):
    response = _train(world, _dataset(world), action="compare", **fields)
    assert response.status_code == 200 and not Job.objects.exists()
    assert message in response.context["errors"][field]


def test_the_page_offers_imagenet_only_for_models_whose_weights_are_here(
    world, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "mobilenet_v3_small-047dcff4.pth").write_bytes(b"weights")
    html = world.client("alice").get(f"/datasets/{_dataset(world).pk}/train/").content.decode()
    assert 'value="mobilenet_v3_small" data-imagenet="1"' in html
    assert 'value="resnet18" data-imagenet="0"' in html


def test_a_refused_layer_list_comes_back_in_the_builder(world, eager):
    layers = json.dumps([LAYERS[0], {"type": "Dense", "units": 4}])
    response = _train(world, _dataset(world), model_source="layers", layers=layers)
    assert response.context["values"]["layers"] == layers
    assert response.context["values"]["model_source"] == "layers"


# --- the settings' explanations: the spec's, in the reader's language ---------------------------


def _kind_dataset(world, kind: str) -> Dataset:
    """A ready dataset of `kind` with one class (no images: the page needs none)."""
    from webapp.datasets.models import Category

    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name=kind, kind=kind, status="ready", head=1
    )
    Category.objects.create(dataset=dataset, index=0, name="thing", valid_from=1)
    return dataset


def _fields_on_page(html: str) -> dict[str, dict]:
    """Each setting's help and (for a choice) its options' labels, as the page shows them."""
    import re
    from html import unescape

    fields = {}
    for name, body in re.findall(r'data-field="(\w+)">(.*?)<span class="error"', html, re.S):
        help_text = re.search(r'<span class="help">(.*?)</span>', body, re.S)
        options = re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', body, re.S)
        fields[name] = {
            "help": unescape(help_text.group(1)) if help_text else None,
            "options": [(value, unescape(label)) for value, label in options],
        }
    return fields


# Pinned to one value by the spec of a kind (the page leaves them out there).
CLASSIFICATION_ONLY = {"kfold", "label_smoothing"}


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("kind", ["classification", "detection", "segmentation", "keypoints"])
def test_every_settings_help_on_the_page_is_the_spec_schemas_description_translated(
    world, kind, language
):
    from django.utils import translation

    from trainer.spec import spec_class

    dataset = _kind_dataset(world, kind)
    page = world.client("alice").get(
        f"/datasets/{dataset.pk}/train/", HTTP_ACCEPT_LANGUAGE=language
    )
    shown = _fields_on_page(page.content.decode())
    expected = {
        s.name
        for s in launch_form.SETTINGS.values()
        if s.for_kind(kind) and not (kind != "classification" and s.name in CLASSIFICATION_ONLY)
    }
    assert set(shown) & set(launch_form.SETTINGS) == expected
    schema = spec_class(kind).model_json_schema()
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    with translation.override(language):
        for name in expected:
            setting = launch_form.SETTINGS[name]
            description = launch_form.schema_property(setting.path, kind)["description"]
            assert shown[name]["help"] == translation.gettext(description), name
            if language == "ja":  # Japanese, not the English msgid left as it was
                assert shown[name]["help"] != description, name
            if setting.kind != "choice":
                continue
            property_ = launch_form.schema_property(setting.path, kind)
            labels = property_["x-enumDescriptions"]
            assert shown[name]["options"] == [
                (value, translation.gettext(labels[value]).format(**defaults))
                for value in property_["enum"]
            ], name
    step = dict(shown["schedule"]["options"])["step"]
    gamma, step_size = defaults["gamma"], defaults["step_size"]
    assert f"×{gamma}" in step and f"{step_size}" in step and "{" not in step


def test_no_explanation_or_choice_is_written_in_the_form_module():
    from pathlib import Path

    source = Path(launch_form.__file__).read_text(encoding="utf-8")
    for setting in launch_form.SETTINGS.values():
        property_ = launch_form.schema_property(setting.path, setting.of)
        assert setting.description and setting.description == property_["description"]
        assert setting.description[:30] not in source, setting.name
        for _value, label in setting.labels:
            assert f'"{label}"' not in source, label
        if setting.kind == "choice":
            assert setting.values == tuple(property_["enum"])
    assert "help=" not in source and "every 10 epochs" not in source


def test_every_explanation_the_page_shows_has_its_japanese_in_the_catalogue():
    import polib
    from django.conf import settings

    po = polib.pofile(str(settings.BASE_DIR / "locale" / "ja" / "LC_MESSAGES" / "django.po"))
    translated = {e.msgid for e in po if e.translated() and not e.obsolete}
    texts = {s.description for s in launch_form.SETTINGS.values()}
    texts |= {label for s in launch_form.SETTINGS.values() for _value, label in s.labels}
    assert sorted(texts - translated) == []


def test_the_step_schedules_label_is_made_of_the_schemas_gamma_and_step_size(monkeypatch):
    from copy import deepcopy

    from trainer.spec import ClassificationSpec

    schema = deepcopy(ClassificationSpec.model_json_schema())
    schema["properties"]["gamma"]["default"] = 0.5
    schema["properties"]["step_size"]["default"] = 3
    monkeypatch.setattr(launch_form, "spec_schema", lambda kind="classification": schema)
    schedule = launch_form._setting("schedule", "schedule", "Schedule", "choice")
    assert dict(schedule.choices)["step"] == "step decay (×0.5 every 3 epochs)"


def test_the_openapi_document_explains_every_setting_as_the_page_does():
    schemas = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]
    spec = schemas["JobIn"]["properties"]["spec"]

    def field(path: str) -> dict:
        node = spec
        for part in path.split("."):
            node = node["properties"][part]
            nodes = [node, *node.get("anyOf", []), *node.get("allOf", [])]
            refs = [n["$ref"] for n in nodes if "$ref" in n]
            if part != path.rsplit(".", 1)[-1] and refs:
                node = schemas[refs[0].rsplit("/", 1)[-1]]
        return node

    for setting in launch_form.SETTINGS.values():
        description = field(setting.path)["description"]
        assert description.startswith(setting.description), setting.path  # "(… only)" added
    schedule = field("schedule")["x-enumDescriptions"]
    assert schedule == dict(launch_form.SETTINGS["schedule"].labels)
