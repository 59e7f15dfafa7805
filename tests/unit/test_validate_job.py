"""`validate_job`, the one check of a spec a user sends: the kind from the dataset (`task` its
old name), the kind's default model, models of another kind and kinds the trainer cannot train
refused, the same answer at the API, the Train page and the worker; the form's bounds are the
spec schema's."""

import pytest
from django.test import Client

from tests.conftest import assert_api_error
from trainer import catalog, limits
from trainer import kinds as trainer_kinds
from trainer.spec import ClassificationSpec
from webapp.datasets.models import Category, Dataset
from webapp.errors import Refused
from webapp.jobs import launch_form, spec_check, tasks
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def _dataset(world, kind="classification", classes=("cat", "dog")) -> Dataset:
    """A ready dataset of `kind` with its classes (no images: the spec's check needs none)."""
    dataset = Dataset.objects.create(
        course=world.course, owner=world.alice, name=f"{kind} set", kind=kind, status="ready",
        head=1,
    )  # fmt: skip
    for index, name in enumerate(classes):
        Category.objects.create(dataset=dataset, index=index, name=name, valid_from=1)
    return dataset


@pytest.fixture
def images(world):
    return _dataset(world)


@pytest.fixture
def boxes(world):
    return _dataset(world, "detection", ("circle", "square"))


def _validate(world, dataset, spec):
    return spec_check.validate_job(world.alice, dataset, spec)


# --- what validate_job fills in ------------------------------------------------------------------


def test_a_spec_without_kind_or_model_gets_the_datasets_kind_and_its_default_model(
    world, images, boxes
):
    spec, problems = _validate(world, images, {"epochs": 2})
    assert problems == {}
    assert spec == {"epochs": 2, "kind": "classification", "model": "simple_cnn"}
    spec, problems = _validate(world, boxes, {})
    assert problems == {}
    assert spec == {"kind": "detection", "model": catalog.default_for("detection")}
    assert spec["model"] == "centernet_tiny"


def test_a_model_of_null_is_the_kinds_default_too(world, boxes):
    spec, problems = _validate(world, boxes, {"model": None})
    assert problems == {} and spec["model"] == "centernet_tiny"


def test_the_spec_it_was_given_is_not_changed(world, boxes):
    sent = {"task": "detection", "transfer": {"source": "none"}}
    _validate(world, boxes, sent)
    assert sent == {"task": "detection", "transfer": {"source": "none"}}


def test_task_is_accepted_as_the_old_name_of_kind(world, boxes):
    spec, problems = _validate(world, boxes, {"task": "detection"})
    assert problems == {}
    assert "task" not in spec and spec["kind"] == "detection"


def test_task_and_kind_that_disagree_are_refused_on_kind(world, boxes):
    _spec, problems = _validate(world, boxes, {"task": "classification", "kind": "detection"})
    assert list(problems) == ["spec.kind"]
    assert "task" in problems["spec.kind"]


def test_a_kind_other_than_the_datasets_is_refused_naming_the_datasets(world, images):
    _spec, problems = _validate(world, images, {"kind": "detection"})
    assert "spec.kind" in problems
    assert "classification" in problems["spec.kind"]


def test_a_model_of_another_kind_is_refused_saying_what_each_is_for(world, images, boxes):
    _spec, problems = _validate(world, images, {"model": "centernet_tiny"})
    assert problems["spec.model"] == (
        "centernet_tiny is a model for object detection; this dataset is for classification."
    )
    _spec, problems = _validate(world, boxes, {"model": "resnet18"})
    assert "resnet18 is a model for classification" in problems["spec.model"]


def test_an_unknown_model_is_named(world, boxes):
    _spec, problems = _validate(world, boxes, {"model": "yolo_v99"})
    assert "yolo_v99" in problems["spec.model"]


def test_the_trainers_own_checks_of_a_kind_still_apply(world, boxes):
    assert set(_validate(world, boxes, {"lr": -1, "epochs": 0})[1]) == {"spec.lr", "spec.epochs"}
    assert "spec.kfold" in _validate(world, boxes, {"kfold": 5})[1]  # detection has no k folds


def test_a_too_small_input_for_the_detector_is_named(world, boxes):
    smallest = catalog.get("centernet_tiny").min_input_size
    _spec, problems = _validate(world, boxes, {"input_size": smallest - 1})
    assert f"{smallest}×{smallest}" in problems["spec.input_size"]
    _spec, problems = _validate(world, boxes, {"input_size": smallest})
    assert problems == {}


def test_a_kind_the_trainer_cannot_train_is_refused_with_the_kinds_it_can(
    world, boxes, monkeypatch
):
    monkeypatch.setattr(trainer_kinds, "trainable", lambda: ("classification",))
    _spec, problems = _validate(world, boxes, {})
    assert list(problems) == ["dataset"]
    assert "object detection" in problems["dataset"]
    assert "classification" in problems["dataset"]


def test_the_kinds_without_a_loop_are_refused(world):
    untrainable = [kind for kind in trainer_kinds.KINDS if kind not in trainer_kinds.trainable()]
    for kind in untrainable:
        _spec, problems = _validate(world, _dataset(world, kind), {})
        assert list(problems) == ["dataset"], kind


def test_a_trainable_kind_without_models_asks_for_a_model_instead_of_failing(
    world, boxes, monkeypatch
):
    monkeypatch.setattr(catalog, "_MODELS", catalog.models("classification"))
    _spec, problems = _validate(world, boxes, {})
    assert problems == {"spec.model": "Choose a model from the list."}


def test_what_is_no_spec_is_refused(world, images):
    assert _validate(world, images, ["epochs"])[1] == {
        "spec": "The spec must be an object of settings."
    }
    assert "data" in _validate(world, images, {"data": {"items": []}})[1]["spec"]


# --- the API: submit and validate ----------------------------------------------------------------


def _post(world, url, body, persona="alice"):
    return Client().post(url, body, content_type="application/json", **world.bearer(persona))


def test_the_api_stores_the_filled_in_spec(world, images):
    response = _post(
        world, "/api/v1/jobs", {"dataset": images.pk, "spec": {"task": "classification"}}
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert job.spec == {"kind": "classification", "model": "simple_cnn"}
    assert response.json()["spec"] == job.spec


def test_the_api_refuses_a_model_of_another_kind_with_422_on_spec_model(world, images):
    body = assert_api_error(
        _post(world, "/api/v1/jobs", {"dataset": images.pk, "spec": {"model": "centernet_tiny"}}),
        422,
    )
    assert "object detection" in body["errors"]["spec.model"]
    assert not Job.objects.exists()


def test_validate_answers_as_submit_for_every_kind(world, images, boxes):
    ok = _post(world, "/api/v1/jobs/validate", {"dataset": boxes.pk, "spec": {}})
    assert ok.status_code == 200 and ok.json() == {"ok": True, "errors": {}}
    body = assert_api_error(
        _post(
            world, "/api/v1/jobs/validate", {"dataset": images.pk, "spec": {"kind": "detection"}}
        ),
        422,
    )
    assert "spec.kind" in body["errors"]


def test_validate_and_submit_still_check_who_may_train(world, images):
    for url in ("/api/v1/jobs/validate", "/api/v1/jobs"):
        response = _post(world, url, {"dataset": images.pk, "spec": {}}, persona="carol")
        assert response.status_code in (400, 404), (url, response.status_code)
        assert_api_error(response, response.status_code)
    assert not Job.objects.exists()


# --- the worker checks again ---------------------------------------------------------------------


def test_the_worker_refuses_a_stored_spec_that_no_longer_passes(world, images):
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=images,
        dataset_version=1,
        spec={"model": "centernet_tiny"},  # changed in the database after it was checked
    )
    with pytest.raises(Refused) as refused:
        tasks.build_spec(job)
    assert refused.value.field == "spec.model"
    assert "object detection" in refused.value.message


def test_the_worker_refuses_before_walking_the_versions_items(world, images, monkeypatch):
    from webapp.datasets import queries

    walked = []
    monkeypatch.setattr(queries, "items_at", lambda *a, **k: walked.append(a) or 1 / 0)
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=images,
        dataset_version=1,
        spec={"model": "centernet_tiny"},
    )
    with pytest.raises(Refused):
        tasks.build_spec(job)
    assert walked == []  # the check came first: no manifest built for a refused run


def test_the_worker_fills_in_a_stored_spec_without_model(world, images):
    job = Job.objects.create(
        course=world.course, owner=world.alice, dataset=images, dataset_version=1, spec={}
    )
    spec = tasks.build_spec(job)
    assert spec["kind"] == "classification" and spec["model"] == "simple_cnn"
    assert spec["data"]["classes"] == ["cat", "dog"]


# --- the Train page ------------------------------------------------------------------------------


def test_the_forms_bounds_and_defaults_are_the_spec_schemas():
    schema = ClassificationSpec.model_json_schema()
    properties = schema["properties"]
    epochs = launch_form.SETTINGS["epochs"]
    assert epochs.high == properties["epochs"]["maximum"] == limits.MAX_EPOCHS
    assert epochs.low == properties["epochs"]["minimum"] == 1
    assert epochs.default == properties["epochs"]["default"]
    lr = launch_form.SETTINGS["lr"]
    assert lr.low == properties["lr"]["exclusiveMinimum"] and lr.above
    assert lr.high == properties["lr"]["maximum"] == limits.MAX_LR
    momentum = launch_form.SETTINGS["momentum"]
    assert momentum.high == properties["momentum"]["exclusiveMaximum"] and momentum.below
    patience = launch_form.SETTINGS["patience"]
    assert patience.high == schema["$defs"]["EarlyStopping"]["properties"]["patience"]["maximum"]
    size = launch_form.SETTINGS["input_size"]
    assert (size.low, size.high, size.default) == (
        limits.MIN_INPUT_SIZE,
        limits.MAX_INPUT_SIZE,
        None,
    )
    assert launch_form.SETTINGS["aug_rotation"].high == 180


def test_every_number_of_the_form_is_bounded_by_the_schema():
    for setting in launch_form.SETTINGS.values():
        if setting.kind in ("int", "float"):
            assert setting.low is not None and setting.high is not None, setting.name


def test_the_form_refuses_one_past_the_schemas_bound():
    top = launch_form.SETTINGS["epochs"].high
    form = launch_form.read(_form(epochs=str(top)), {})
    assert "epochs" not in form.errors and form.spec["epochs"] == top
    form = launch_form.read(_form(epochs=str(top + 1)), {})
    assert form.errors["epochs"] == launch_form.SETTINGS["epochs"].range_message()


def test_the_forms_choices_are_the_schemas():
    properties = ClassificationSpec.model_json_schema()["properties"]
    for name in ("optimizer", "schedule"):
        offered = [value for value, _label in launch_form.SETTINGS[name].choices]
        assert offered == properties[name]["enum"], name


def _form(**fields):
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for name, value in {**launch_form.initial().values, **fields}.items():
        if value is True:
            data[name] = "1"
        elif value not in (False, None):
            data[name] = str(value)
    return data


def _page(world, dataset, language="en"):
    client = world.client("alice")
    return client.get(f"/datasets/{dataset.pk}/train/", HTTP_ACCEPT_LANGUAGE=language)


def test_the_train_page_offers_the_models_of_the_datasets_kind_and_marks_the_default(
    world, images, boxes
):
    page = _page(world, boxes).content.decode()
    assert 'value="centernet_tiny" checked' in page
    assert 'value="simple_cnn"' not in page and 'value="resnet18"' not in page
    page = _page(world, images).content.decode()
    assert 'value="simple_cnn" checked' in page
    assert 'value="centernet_tiny"' not in page


def test_the_train_page_leaves_out_a_setting_the_kinds_schema_pins(world, boxes, monkeypatch):
    # DetectionSpec holds kfold and label smoothing at 0: its page offers neither.
    page = _page(world, boxes).content.decode()
    assert 'name="kfold"' not in page and 'name="label_smoothing"' not in page
    assert "k-fold cross-validation, set k" not in page  # nor the hint that points to it
    schema_property = launch_form.schema_property

    def unpinned(path, kind="classification"):  # as if a detector took k folds
        if path == "kfold" and kind == "detection":
            return schema_property(path, "classification")
        return schema_property(path, kind)

    monkeypatch.setattr(launch_form, "schema_property", unpinned)
    page = _page(world, boxes).content.decode()
    assert 'name="kfold"' in page and "k-fold cross-validation, set k" in page


def test_the_train_page_shows_a_slow_models_cpu_note(world, boxes, monkeypatch):
    slow = catalog.ModelEntry(
        "slow_detector", "detection", "torchvision", {"ja": "遅い検出器", "en": "A slow detector"},
        1_000_000, 224, 32, 3, "trainer.models.tv_detectors",
        cpu_note={"ja": "CPUでは1枚/秒未満", "en": "Under 1 image/s on a CPU"},
    )  # fmt: skip
    monkeypatch.setattr(catalog, "_MODELS", [*catalog._MODELS, slow])
    page = _page(world, boxes).content.decode()
    assert "Under 1 image/s on a CPU" in page
    assert "CPUでは1枚/秒未満" in _page(world, boxes, "ja").content.decode()


def test_the_train_page_submits_the_default_detector(world, boxes):
    response = world.client("alice").post(
        f"/datasets/{boxes.pk}/train/", _form(model_source="preset", preset="centernet_tiny")
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.spec["kind"] == "detection" and job.spec["model"] == "centernet_tiny"


def test_the_train_page_of_a_kind_the_trainer_cannot_train_queues_nothing(world):
    untrainable = [kind for kind in trainer_kinds.KINDS if kind not in trainer_kinds.trainable()]
    for kind in untrainable:
        dataset = _dataset(world, kind)
        assert _page(world, dataset).status_code == 200, kind
        response = world.client("alice").post(f"/datasets/{dataset.pk}/train/", _form())
        assert response.status_code == 200, kind  # the form again, saying why
    assert not Job.objects.exists()


def test_an_earlier_run_that_named_no_model_is_offered_as_its_kinds_default(world, images):
    run = Job.objects.create(
        course=world.course, owner=world.alice, dataset=images, dataset_version=1, spec={},
        status="succeeded",
    )  # fmt: skip
    page = _page(world, images).content.decode()
    assert f"#{run.pk} simple_cnn" in page
    assert "&quot;simple_cnn&quot;" in page  # the model the page switches to for this source


def test_a_kinds_own_settings_are_on_its_page_only_with_its_schemas_bounds(world, images):
    from trainer.spec import KeypointsSpec, SegmentationSpec

    masks = _dataset(world, "segmentation", ("circle", "square"))
    people = _dataset(world, "keypoints", ("person",))
    width = SegmentationSpec.model_json_schema()["properties"]["width"]
    setting = launch_form.SETTINGS["width"]
    assert (setting.low, setting.high, setting.default) == (
        width["minimum"],
        width["maximum"],
        width["default"],
    )
    sigma = KeypointsSpec.model_json_schema()["properties"]["sigma"]
    assert launch_form.SETTINGS["sigma"].high == sigma["maximum"]
    page = _page(world, masks).content.decode()
    assert 'name="width"' in page and 'name="dice_weight"' in page
    assert 'name="sigma"' not in page and 'name="kfold"' not in page
    page = _page(world, people).content.decode()
    assert 'name="sigma"' in page and 'name="width"' not in page
    page = _page(world, images).content.decode()
    assert 'name="width"' not in page and 'name="sigma"' not in page
    # A classifier's form never carries another kind's setting, whatever is posted.
    form = launch_form.read(_form(width="8", sigma="3"), {})
    assert "width" not in form.spec and "sigma" not in form.spec
    form = launch_form.read(
        _form(width="8", model_source="preset", preset="unet"), {}, "segmentation"
    )
    assert form.spec["width"] == 8 and not form.errors
    form = launch_form.read(
        _form(width="65", model_source="preset", preset="unet"), {}, "segmentation"
    )
    assert form.errors["width"] == setting.range_message()


def test_a_keypoints_dataset_needs_named_keypoints_and_its_set_sizes_the_check(world):
    people = _dataset(world, "keypoints", ("person",))
    _spec, problems = _validate(world, people, {})
    assert list(problems) == ["dataset"] and "keypoint names" in problems["dataset"]
    Category.objects.filter(dataset=people).update(
        keypoints=["head", "neck", "hip"], skeleton=[[1, 2], [2, 3], [3, 9]]
    )
    spec, problems = _validate(world, people, {"epochs": 1, "sigma": 1.5})
    assert problems == {} and spec["model"] == "pose_unet"
    schema = spec_check.keypoint_schema(Category.objects.filter(dataset=people))
    assert schema == {"names": ["head", "neck", "hip"], "skeleton": [[1, 2], [2, 3]]}  # in range
    data = spec_check.placeholder_data(1, "keypoints", schema)
    assert data["items"][0]["annotations"][0]["keypoints"] == [0, 0, 2] * 3
    _spec, problems = _validate(world, people, {"sigma": 9})
    assert "spec.sigma" in problems
