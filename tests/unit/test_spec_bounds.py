"""Sizes a worker could never hold are refused on the web side, naming the field, before anything
is queued: at submit, validate, the model summary, the Train page and its groups."""

import json
from unittest import mock

import pytest
from django.test import Client

from tests.conftest import assert_api_error
from trainer import catalog
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import actions, launch_form
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

FLAT = {"type": "Flatten"}
# (what, spec, the field a submit or validate names, the field the summary names or None)
TOO_BIG = [
    (
        "Dense units 1e12",
        {"model": [FLAT, {"type": "Dense", "units": 1e12}]},
        "spec.model.1.units",
        "model.1.units",
    ),
    (
        "Conv2d filters 1e9",
        {"model": [{"type": "Conv2d", "filters": 1e9, "kernel": 3}, {"type": "GlobalAvgPool"}]},
        "spec.model.0.filters",
        "model.0.filters",
    ),
    ("seed 10**23", {"model": "simple_cnn", "seed": 10**23}, "spec.seed", None),  # JSON 1000…0
    ("seed 1e23", {"model": "simple_cnn", "seed": 1e23}, "spec.seed", None),
    ("input size 1e6", {"model": "simple_cnn", "input_size": 1e6}, "spec.input_size", None),
    (
        "a Dense layer of 206 G parameters",
        {"model": [FLAT, {"type": "Dense", "units": 65536}], "input_size": 1024, "channels": 3},
        "spec.model.1.units",
        "model.1.units",
    ),
    (
        "4,096 feature maps of 1024×1024",
        {
            "model": [{"type": "Conv2d", "filters": 4096, "kernel": 3}, {"type": "GlobalAvgPool"}],
            "input_size": 1024,
        },
        "spec.model.0.filters",
        "model.0.filters",
    ),
    (
        "a batch of 4,096 at 512 feature maps of 1024×1024",
        {
            "model": [{"type": "Conv2d", "filters": 512, "kernel": 3}, {"type": "GlobalAvgPool"}],
            "input_size": 1024,
            "batch_size": 4096,
        },
        "spec.batch_size",
        None,  # one image fits: only the batch is too large
    ),
    ("VGG-16 with a batch of 4,096", {"model": "vgg16_bn", "batch_size": 4096}, "spec.batch_size",
     None),
    (
        "the MLP at 1024×1024 RGB",
        {"model": "mlp_keras", "input_size": 1024, "channels": 3},
        "spec.input_size",
        "input_size",
    ),
]  # fmt: skip
IDS = [case[0] for case in TOO_BIG]
SPECS = {case[0]: case[1] for case in TOO_BIG}


@pytest.fixture
def dataset(world):
    made = dataset_actions.copy_sample(world.alice, world.course, "faces")
    dataset_tasks.copy_sample(made.pk, "faces", "en")
    made.refresh_from_db()
    return made


@pytest.fixture
def no_celery():
    """Every task a request might send (a job, a summary); none may be."""
    with mock.patch("celery.app.task.Task.apply_async") as sent:
        yield sent


def _post(world, url, body):
    return Client().post(url, body, content_type="application/json", **world.bearer("alice"))


@pytest.mark.parametrize(("what", "spec", "field", "summary_field"), TOO_BIG, ids=IDS)
def test_too_big_is_refused_at_submit_and_validate_naming_the_field(
    world, dataset, no_celery, django_capture_on_commit_callbacks, what, spec, field, summary_field
):
    with django_capture_on_commit_callbacks(execute=True):
        for url in ("/api/v1/jobs", "/api/v1/jobs/validate"):
            body = assert_api_error(_post(world, url, {"dataset": dataset.pk, "spec": spec}), 422)
            assert field in body["errors"], (url, body)
    assert not Job.objects.exists() and not no_celery.called


@pytest.mark.parametrize(("what", "spec", "field", "summary_field"), TOO_BIG, ids=IDS)
def test_too_big_never_reaches_a_worker_for_a_summary(
    world, no_celery, what, spec, field, summary_field
):
    if summary_field is None:
        return  # the summary has no seed and computes one image: nothing too big to ask for
    request = {"model": spec["model"], "classes": 10}
    request.update({key: spec[key] for key in ("input_size", "channels") if key in spec})
    body = assert_api_error(_post(world, "/api/v1/models/summary", request), 422)
    assert summary_field in body["errors"], body
    assert not no_celery.called


def test_the_message_says_how_big_and_what_the_limit_is(world, dataset, no_celery):
    spec = SPECS["a Dense layer of 206 G parameters"]  # Flatten 3×1024×1024 → Dense 65,536
    body = assert_api_error(
        _post(world, "/api/v1/jobs/validate", {"dataset": dataset.pk, "spec": spec}), 422
    )
    assert body["errors"]["spec.model.1.units"] == (
        "This layer would have 206,158,495,744 parameters; the limit is 300,000,000. Use fewer "
        "units or filters, or make its input smaller first (pooling, a stride)."
    )
    batch = SPECS["a batch of 4,096 at 512 feature maps of 1024×1024"]
    body = assert_api_error(
        _post(world, "/api/v1/jobs", {"dataset": dataset.pk, "spec": batch}), 422
    )
    assert "Use a batch size of at most 4." in body["errors"]["spec.batch_size"]
    japanese = Client().post(
        "/api/v1/jobs/validate",
        {"dataset": dataset.pk, "spec": spec},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="ja",
        **world.bearer("alice"),
    )
    assert "206,158,495,744" in japanese.json()["errors"]["spec.model.1.units"]
    assert "パラメータ" in japanese.json()["errors"]["spec.model.1.units"]


def _form(**fields):
    values = {**launch_form.initial().values, **fields}
    return {name: "1" if value is True else str(value) for name, value in values.items()
            if value not in (False, None)}  # fmt: skip


def test_the_train_page_and_its_groups_refuse_too_big_before_anything_is_queued(
    world, dataset, no_celery, django_capture_on_commit_callbacks
):
    page = f"/datasets/{dataset.pk}/train/"
    huge = [FLAT, {"type": "Dense", "units": 65536}]
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client("alice").post(
            page,
            _form(model_source="layers", layers=json.dumps(huge), input_size="1024"),
        )
        assert response.status_code == 200
        assert "This layer would have" in response.content.decode()
        response = world.client("alice").post(
            page,
            _form(preset="simple_cnn", action="compare", compare_variable="batch_size",
                  compare_values="32, 4096", input_size="1024"),
        )  # fmt: skip
        assert response.status_code == 200 and "Use a batch size of at most" in (
            response.content.decode()
        )
        with pytest.raises(actions.InvalidSpec) as refused:
            actions.submit_group(
                world.alice, dataset, {"model": "vgg16_bn"}, "batch_size", [64, 4096]
            )
        assert refused.value.field == "spec.batch_size"
    assert not Job.objects.exists() and not no_celery.called


# --- what the lecture and torchvision need still passes -------------------------------------


def test_every_model_of_the_catalog_validates_at_its_usual_size(world, dataset, no_celery):
    for entry in catalog.models("classification"):
        spec = {"model": entry.name, "batch_size": 256 if entry.family == "torchvision" else 128}
        response = _post(world, "/api/v1/jobs/validate", {"dataset": dataset.pk, "spec": spec})
        assert response.status_code == 200, (entry.name, response.content)
    big = {"model": "resnet50", "input_size": 224, "channels": 3, "batch_size": 256}
    response = _post(world, "/api/v1/jobs/validate", {"dataset": dataset.pk, "spec": big})
    assert response.status_code == 200, response.content
    starter = {"model": launch_form.STARTER_LAYERS, "input_size": 64, "batch_size": 512}
    response = _post(world, "/api/v1/jobs/validate", {"dataset": dataset.pk, "spec": starter})
    assert response.status_code == 200, response.content


def test_a_layer_type_in_any_case_still_validates(world, dataset):
    layers = [{"type": "conv2d", "filters": 8, "kernel": 3, "activation": "ReLU"},
              {"type": "maxpool"}, {"type": "FLATTEN"}, {"type": "dense", "units": 16}]  # fmt: skip
    response = _post(world, "/api/v1/jobs/validate", {"dataset": dataset.pk,
                                                      "spec": {"model": layers}})  # fmt: skip
    assert response.status_code == 200, response.content


def test_settings_of_the_wrong_shape_are_named_never_a_server_error(world, dataset, no_celery):
    for spec, field in [
        ({"model": "simple_cnn", "transfer": ["job:1"]}, "spec.transfer"),
        ({"model": [{"type": "Dense", "units": "many"}]}, "spec.model.0.units"),
        ({"model": {"type": "Dense"}}, "spec.model"),
    ]:
        for url in ("/api/v1/jobs", "/api/v1/jobs/validate"):
            body = assert_api_error(_post(world, url, {"dataset": dataset.pk, "spec": spec}), 422)
            assert field in body["errors"], (spec, body)
    assert not Job.objects.exists() and not no_celery.called
