"""Bad input never gets a 500: ids that are no UUID or beyond 64 bits, numbers out of range in
queries and bodies, page URLs with such numbers, and workers that run out of memory."""

import json
import uuid
from unittest import mock
from unittest.mock import ANY

import pytest
from django.test import Client

from tests.conftest import assert_api_error
from webapp.api.urls import api
from webapp.celery import app as celery_app
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

HUGE = 99999999999999999999999  # beyond 64 bits: no database can look it up


def _operations():
    """(method, path template, its path parameters' schemas) of every API operation."""
    for path, methods in api.get_openapi_schema()["paths"].items():
        for method, operation in methods.items():
            params = {
                p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "path"
            }
            yield method, path, params


def _call(headers: dict, method: str, path: str, body=None):
    if method == "get":
        return Client().get(path, **headers)
    data = json.dumps(body) if body is not None else ""
    return getattr(Client(), method)(path, data, content_type="application/json", **headers)


def test_every_id_in_an_api_path_is_bounded_and_a_uuid_is_checked(world):
    headers = world.bearer("teacher")
    checked = 0
    for method, template, params in _operations():
        for name, schema in params.items():
            values = {
                other: (str(uuid.uuid4()) if "uuid" in str(s) else "1")
                for other, s in params.items()
            }
            values[name] = "not-a-uuid" if schema.get("format") == "uuid" else str(HUGE)
            if values[name] != "not-a-uuid" and schema.get("type") != "integer":
                continue  # a name (an artifact's), not an id
            path = template.format(**values)
            sent = {} if method in ("post", "put", "patch") else None
            body = assert_api_error(_call(headers, method, path, sent), 422)
            assert name in body["errors"], (method, path, body)
            checked += 1
    assert checked >= 30  # every route with an id, not a few


def test_upload_ids_that_are_not_uuids_answer_422_with_the_field(world):
    headers = world.bearer("alice")
    for method, path, body in [
        ("get", "/api/v1/uploads/not-a-uuid", None),
        ("put", "/api/v1/uploads/not-a-uuid?offset=0", None),
        ("post", "/api/v1/uploads/not-a-uuid/complete", {"name": "x", "kind": "classification"}),
    ]:
        refused = assert_api_error(_call(headers, method, path, body), 422)
        assert "upload_id" in refused["errors"]
    missing = _call(headers, "get", f"/api/v1/uploads/{uuid.uuid4()}")
    assert_api_error(missing, 404)


def test_a_member_id_beyond_64_bits_answers_422_not_a_server_error(world):
    headers = world.bearer("teacher")
    path = f"/api/v1/courses/{world.course.pk}/members/{HUGE}"
    for method, body in [("patch", {"role": "ta"}), ("delete", None)]:
        assert "user_id" in assert_api_error(_call(headers, method, path, body), 422)["errors"]
    reset = _call(headers, "post", f"{path}/password")
    assert "user_id" in assert_api_error(reset, 422)["errors"]


@pytest.fixture
def dataset(world):
    from webapp.datasets import actions, tasks

    made = actions.copy_sample(world.alice, world.course, "faces")
    tasks.copy_sample(made.pk, "faces", "en")
    made.refresh_from_db()
    return made


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=100000000000000000000000", "page"),
        ("page=1e23", "page"),
        ("page=0", "page"),
        ("version=100000000000000000000000", "version"),
        ("split=nowhere", "split"),
    ],
)
def test_numbers_out_of_range_in_a_query_are_refused(world, dataset, query, field):
    response = Client().get(f"/api/v1/datasets/{dataset.pk}/items?{query}", **world.bearer("alice"))
    assert field in assert_api_error(response, 422)["errors"]


def test_numbers_out_of_range_in_other_queries_are_refused(world, dataset):
    headers = world.bearer("alice")
    job = Job.objects.create(
        course=world.course, owner=world.alice, dataset=dataset, dataset_version=1, spec={}
    )
    for path, field in [
        (f"/api/v1/jobs/{job.pk}/events?after={HUGE}", "after"),
        (f"/api/v1/jobs/{job.pk}/events?limit=100000", "limit"),
        (f"/api/v1/datasets?course={HUGE}", "course"),
        (f"/api/v1/datasets/{dataset.pk}/export?version={HUGE}", "version"),
    ]:
        assert field in assert_api_error(Client().get(path, **headers), 422)["errors"], path


def test_numbers_out_of_range_in_bodies_are_refused(world, dataset):
    headers = world.bearer("alice")
    cases = [
        ("post", f"/api/v1/datasets/{dataset.pk}/edit", {"op": "delete", "items": [1e23]}),
        ("post", f"/api/v1/datasets/{dataset.pk}/edit", {"op": "resplit", "seed": 2**40}),
        ("post", f"/api/v1/datasets/{dataset.pk}/edit", {"op": "resplit", "folds": 10**30}),
        ("post", "/api/v1/jobs", {"dataset": HUGE, "spec": {}}),
        ("post", "/api/v1/jobs/validate", {"dataset": 1e23, "spec": {}}),
        ("post", "/api/v1/uploads", {"course": HUGE, "file_name": "a.zip", "size": 10}),
        ("post", "/api/v1/uploads", {"course": world.course.pk, "file_name": "a", "size": HUGE}),
        ("post", "/api/v1/datasets/samples", {"course": HUGE, "sample": "faces"}),
        ("post", "/api/v1/assignments/1/submissions", {"job": HUGE}),
    ]
    for method, path, body in cases:
        response = _call(headers, method, path, body)
        assert_api_error(response, 422)
    teacher = world.bearer("teacher")
    limits = {"gpu_minutes_per_student": HUGE}
    patch = _call(teacher, "patch", f"/api/v1/courses/{world.course.pk}", limits)
    assert "gpu_minutes_per_student" in assert_api_error(patch, 422)["errors"]


def test_the_edit_of_more_images_than_one_request_may_name_is_refused(world, dataset):
    too_many = list(range(1, 10_002))
    response = _call(
        world.bearer("alice"),
        "post",
        f"/api/v1/datasets/{dataset.pk}/edit",
        {"op": "delete", "items": too_many},
    )
    assert "items" in assert_api_error(response, 422)["errors"]


@pytest.mark.parametrize(
    "url",
    [
        f"/compare/?jobs={HUGE},1",
        "/compare/?jobs=1e23,1",
        f"/jobs/{HUGE}/",
        f"/datasets/{HUGE}/",
        f"/courses/{HUGE}/",
        f"/groups/{HUGE}/",
    ],
)
def test_pages_with_numbers_beyond_64_bits_answer_4xx(world, url):
    response = world.client("alice").get(url)
    assert 400 <= response.status_code < 500, (url, response.status_code)


# --- the worker runs out of memory ---------------------------------------------------------------

CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 824633720832 bytes. Error code 12 (Cannot allocate memory)"
)


def test_out_of_memory_is_told_apart_from_other_errors():
    import torch

    from trainer.memory import out_of_memory

    try:
        torch.empty(2**60)  # no allocator gives 4 EiB: PyTorch's own error, not a stand-in
    except RuntimeError as exc:
        assert out_of_memory(exc)
    assert out_of_memory(MemoryError())
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise ValueError("while building") from inner
    except ValueError as wrapped:
        assert out_of_memory(wrapped)
    assert not out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not out_of_memory(ValueError("bad"))


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError(CPU_OOM)])
def test_a_summary_too_large_for_the_worker_answers_422(world, monkeypatch, failure):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    layers = [{"type": "Flatten"}, {"type": "Dense", "units": 4096}]
    with mock.patch("trainer.registry.build_layers", side_effect=failure):
        response = Client().post(
            "/api/v1/models/summary",
            {"model": layers, "input_size": 64, "classes": 10},
            content_type="application/json",
            **world.bearer("alice"),
        )
    body = assert_api_error(response, 422)
    assert "memory" in body["errors"]["model"]


def test_a_prediction_that_runs_out_of_memory_answers_413(world, dataset, monkeypatch):
    import io

    from PIL import Image

    from webapp.jobs import predict

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=1,
        spec={},
        status="succeeded",
    )
    monkeypatch.setattr(predict, "model_dir", lambda job_id: _FakeFolder())
    image = io.BytesIO()
    Image.new("L", (8, 8)).save(image, "PNG")
    image.name = "digit.png"
    image.seek(0)
    with mock.patch.object(predict, "answer", side_effect=RuntimeError(CPU_OOM)):
        response = Client().post(
            f"/api/v1/jobs/{job.pk}/predict", {"image": image}, **world.bearer("alice")
        )
    body = assert_api_error(response, 413)
    assert "memory" in body["errors"]["image"]


class _FakeFolder:
    """A job folder whose model file exists (the answer is mocked after that check)."""

    def __truediv__(self, name):
        return self

    def exists(self) -> bool:
        return True


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError(CPU_OOM)])
def test_a_job_that_runs_out_of_memory_fails_with_a_reason_a_student_can_act_on(
    world, dataset, failure
):
    from webapp.jobs import tasks

    job = Job.objects.create(
        course=world.course,
        owner=world.alice,
        dataset=dataset,
        dataset_version=dataset.head,
        spec={"model": "logistic", "epochs": 1},
    )
    with (
        mock.patch("webapp.jobs.scheduler.dispatch_jobs"),
        mock.patch("trainer.loops.run", side_effect=failure),
    ):
        tasks.train(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "ran out of memory" in job.error and "smaller batch size" in job.error


# --- bodies are what the schema says they are ----------------------------------------------------


def test_a_json_body_that_is_not_an_object_is_refused(world, dataset):
    headers = world.bearer("alice")
    for body in ([], "visibility", 5):
        response = _call(headers, "patch", f"/api/v1/datasets/{dataset.pk}", body)
        assert_api_error(response, 400)
    for path in ("/api/v1/jobs", "/api/v1/models/summary", "/api/v1/auth/token"):
        assert_api_error(_call(headers, "post", path, [1, 2]), 400)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("edit", {"op": "resplit", "seed": "5"}, "seed"),
        ("edit", {"op": "delete", "items": [True]}, "items.0"),
        ("edit", {"op": "resplit", "val": False}, "val"),
        ("jobs", {"spec": {"epochs": "5"}}, "spec.epochs"),
        (
            "jobs",
            {"spec": {"model": [{"type": "LeakyReLU", "slope": False}]}},
            "spec.model.0.slope",
        ),
        ("validate", {"spec": {"augmentation": {"hflip": 1}}}, "spec.augmentation.hflip"),
        ("summary", {"model": [{"type": "Dense", "units": "8"}]}, "model.0.units"),
        ("summary", {"model": "simple_cnn", "channels": True}, "channels"),
        ("jobs", {"spec": {"channels": True}}, "spec.channels"),
        (
            "validate",
            {"spec": {"model": [{"type": "Conv2d", "filters": 1, "kernel": 1, "padding": False}]}},
            "spec.model.0.padding",
        ),
        ("validate", {"spec": {"channels": 1.0}}, "spec.channels"),
    ],
)
def test_values_of_another_json_type_than_the_schema_says_are_refused(
    world, dataset, path, body, field
):
    url = {
        "edit": f"/api/v1/datasets/{dataset.pk}/edit",
        "jobs": "/api/v1/jobs",
        "validate": "/api/v1/jobs/validate",
        "summary": "/api/v1/models/summary",
    }[path]
    if path in ("jobs", "validate"):
        body = {"dataset": dataset.pk, **body}
    response = _call(world.bearer("alice"), "post", url, body)
    assert field in assert_api_error(response, 422)["errors"], response.content
    assert not Job.objects.exists()


def test_a_multipart_body_without_a_boundary_answers_400_with_the_error_shape(world):
    response = Client().post(
        "/api/v1/datasets",
        b'--x\r\nContent-Disposition: form-data; name="course"\r\n\r\n1\r\n--x--\r\n',
        content_type="multipart/form-data",
        **world.bearer("alice"),
    )
    assert "multipart" in assert_api_error(response, 400)["detail"]


def test_a_query_of_too_many_parameters_answers_400_with_the_error_shape(world, dataset):
    crowd = "&".join(f"p{i}=1" for i in range(1100))
    response = Client().get(f"/api/v1/datasets/{dataset.pk}/items?{crowd}", **world.bearer("alice"))
    assert_api_error(response, 400)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/v1/courses", {"name": "Deep\x00learning"}, 422, "name"),
        ("/api/v1/auth/token", {"username": "a\x00", "password": "x"}, 422, "username"),
        ("/api/v1/datasets?course=1&x=a\x00b", None, 400, "x"),
    ],
)
def test_a_nul_character_anywhere_is_refused_with_its_field(world, path, body, status, field):
    """PostgreSQL cannot store NUL; it once made `POST /courses` answer 500 there."""
    client = world.client("teacher")
    if body is None:
        answer = client.get(path)
    else:
        answer = client.post(path, body, content_type="application/json")
    assert assert_api_error(answer, status)["errors"] == {field: ANY}


def test_no_two_api_schemas_share_a_name():
    """The OpenAPI schema names each shape once: two classes called `VersionOut` made the
    fuzzer check the versions list against the labelling one."""
    import importlib
    import inspect
    import pkgutil

    import ninja

    import webapp.api as package

    seen: dict[str, str] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"webapp.api.{module_info.name}")
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, ninja.Schema)):
                continue
            if value.__module__ != module.__name__:
                continue
            assert name not in seen, f"{name} in {seen.get(name)} and {module.__name__}"
            seen[name] = module.__name__
