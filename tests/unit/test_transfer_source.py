"""Where a transfer starts: only none, imagenet or an earlier run one may use, at submit and again
on the worker; no event, response, card or page shows a server path."""

import json
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from tests.conftest import PERSONAS, assert_api_error
from webapp.accounts.models import Membership, Role
from webapp.datasets import actions as dataset_actions
from webapp.datasets import tasks as dataset_tasks
from webapp.jobs import actions, tasks
from webapp.jobs.models import Job, JobEvent, JobStatus
from webapp.jobs.tasks import JobReporter

pytestmark = pytest.mark.django_db
SPEC = {"model": "logistic", "epochs": 1, "input_size": 8, "lr": 0.05}


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    """Job folders are numbered by row id: each test gets its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"


def _sample(world, owner, course, sample="faces"):
    dataset = dataset_actions.copy_sample(owner, course, sample, visibility="shared")
    dataset_tasks.copy_sample(dataset.pk, sample, "en")
    dataset.refresh_from_db()
    return dataset


def _run(world, owner, dataset, *, with_weights=True, **fields) -> Job:
    """A succeeded run (no training) whose weights file exists when `with_weights`."""
    job = Job.objects.create(
        course=dataset.course,
        owner=owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=SPEC,
        status=JobStatus.SUCCEEDED,
        **fields,
    )
    if with_weights:
        default_storage.save(f"jobs/{job.pk}/model.safetensors", ContentFile(b"weights"))
    return job


def _weights(job: Job) -> str:
    return default_storage.path(f"jobs/{job.pk}/model.safetensors")


def _post(world, persona, url, dataset, spec):
    return Client().post(
        url,
        {"dataset": dataset.pk, "spec": spec},
        content_type="application/json",
        **world.bearer(persona),
    )


def _with_source(source: str, mode="fine_tuning") -> dict:
    return {**SPEC, "transfer": {"source": source, "mode": mode}}


# --- at submit: the API, validate, the Train page, groups --------------------------------------


@pytest.fixture
def runs(world):
    """A shared dataset of the class, bob's run in it, and carol's run in the other class."""
    course_data = _sample(world, world.teacher, world.course)
    other_data = _sample(world, world.carol, world.other_course)
    return {
        "data": course_data,
        "other_data": other_data,
        "bobs": _run(world, world.bob, course_data),
        "carols": _run(world, world.carol, other_data),
    }


def _path_sources(runs) -> dict[str, str]:
    return {
        "absolute, another student's job folder": _weights(runs["bobs"]),
        "relative ../, another student's run": f"../{runs['bobs'].pk}/model.safetensors",
        "absolute, a run of another class": _weights(runs["carols"]),
        "relative, out of the media folder": "../../../../etc/passwd.safetensors",
        "a bare file name": "model.safetensors",
    }


@pytest.mark.parametrize("url", ["/api/v1/jobs", "/api/v1/jobs/validate"])
def test_a_path_as_transfer_source_is_refused_naming_the_field(world, runs, url):
    for what, source in _path_sources(runs).items():
        response = _post(world, "alice", url, runs["data"], _with_source(source))
        body = assert_api_error(response, 422)
        assert "files on the server cannot be named" in body["errors"]["spec.transfer.source"], what
    assert not Job.objects.filter(owner=world.alice).exists()


def test_the_train_page_and_groups_refuse_a_path_as_transfer_source(world, runs):
    source = _weights(runs["bobs"])
    page = world.client("alice").post(
        f"/datasets/{runs['data'].pk}/train/",
        {"model_source": "preset", "preset": "logistic", "transfer_source": source,
         "transfer_mode": "fine_tuning", "epochs": "1", "batch_size": "64",
         "optimizer": "adam", "lr": "0.01", "action": "train"},
    )  # fmt: skip
    assert page.status_code == 200 and "Choose one of the options." in page.content.decode()
    with pytest.raises(actions.InvalidSpec) as refused:
        actions.submit_group(
            world.alice,
            runs["data"],
            _with_source(source),
            "transfer.mode",
            ["scratch", "feature_extraction", "fine_tuning"],
        )
    assert refused.value.field == "spec.transfer.source"
    assert not Job.objects.filter(owner=world.alice).exists()


SUBMIT = {"anon": 401, "alice": 201, "bob": 422, "carol": 422, "ta": 201, "teacher": 201,
          "other_teacher": 422}  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_who_may_see_a_run_starts_from_it(world, runs, persona):
    alices = _run(world, world.alice, runs["data"])
    in_other_class = persona in ("carol", "other_teacher")
    dataset = runs["other_data"] if in_other_class else runs["data"]
    spec = _with_source(f"job:{alices.pk}")
    submitted = _post(world, persona, "/api/v1/jobs", dataset, spec)
    assert submitted.status_code == SUBMIT[persona], submitted.content
    checked = _post(world, persona, "/api/v1/jobs/validate", dataset, spec)
    assert checked.status_code == {201: 200}.get(SUBMIT[persona], SUBMIT[persona])
    if SUBMIT[persona] == 422:
        for body in (submitted.json(), checked.json()):
            assert body["errors"]["spec.transfer.source"] == "No earlier run with this id is yours."


def test_a_run_without_weights_or_of_a_huge_id_is_refused(world, runs):
    unfinished = _run(world, world.alice, runs["data"], with_weights=False)
    for source, message in [
        (f"job:{unfinished.pk}", "has no trained model"),
        ("job:99999999999999999999999", "files on the server cannot be named"),
    ]:
        body = assert_api_error(
            _post(world, "alice", "/api/v1/jobs", runs["data"], _with_source(source)), 422
        )
        assert message in body["errors"]["spec.transfer.source"]


# --- again on the worker ---------------------------------------------------------------------


def _queued(owner, dataset, spec) -> Job:
    return Job.objects.create(
        course=dataset.course,
        owner=owner,
        dataset=dataset,
        dataset_version=dataset.head,
        spec=spec,
    )


def test_a_job_row_changed_to_name_a_file_fails_on_the_worker_without_loading_it(world, runs):
    job = _queued(world.alice, runs["data"], _with_source(_weights(runs["bobs"])))
    with mock.patch("trainer.loops.run") as trainer:
        tasks.train(job.pk)
    job.refresh_from_db()
    assert not trainer.called
    assert job.status == JobStatus.FAILED
    assert "files on the server cannot be named" in job.error
    assert str(django_settings.MEDIA_ROOT) not in job.error


def test_a_run_its_owner_may_no_longer_use_fails_on_the_worker(world, runs):
    job = actions.submit(world.ta, runs["data"], _with_source(f"job:{runs['bobs'].pk}"))
    Membership.objects.filter(user=world.ta, course=world.course).update(role=Role.STUDENT)
    with mock.patch("trainer.loops.run") as trainer:
        tasks.train(job.pk)
    job.refresh_from_db()
    assert not trainer.called
    assert (job.status, job.error) == (JobStatus.FAILED, "No earlier run with this id is yours.")


# --- no server path in events, responses, cards or pages -------------------------------------


def _media_roots() -> list[str]:
    root = str(django_settings.MEDIA_ROOT)
    return [root, str(Path(root).resolve())]


def _trained(world, dataset, spec) -> Job:
    job = _queued(dataset.owner, dataset, spec)
    tasks.train(job.pk)  # inline: the trainer writes the job's files under MEDIA_ROOT
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def test_a_real_run_and_its_transfer_show_no_server_path(world):
    digits = _sample(world, world.alice, world.course, "digits")
    first = _trained(world, digits, SPEC)
    second = _trained(world, digits, _with_source(f"job:{first.pk}"))
    client = world.client("alice")
    for job in (first, second):
        stored = list(JobEvent.objects.filter(job=job).values_list("kind", "data"))
        checkpoints = [data for kind, data in stored if kind == "checkpoint"]
        assert checkpoints and all(
            data["file"] == "checkpoint.pt" and "path" not in data for data in checkpoints
        )
        shown = [
            json.dumps([data for _kind, data in stored]),
            client.get(f"/api/v1/jobs/{job.pk}/events").content.decode(),
            client.get(f"/api/v1/jobs/{job.pk}").content.decode(),
            b"".join(client.get(f"/api/v1/jobs/{job.pk}/artifacts/model_card.json")).decode(),
            client.get(f"/jobs/{job.pk}/").content.decode(),
            client.get(f"/jobs/{job.pk}/result/").content.decode(),
        ]
        for text in shown:
            assert not any(root in text for root in _media_roots())
    card = json.loads(Path(default_storage.path(f"jobs/{second.pk}/model_card.json")).read_text())
    assert card["spec"]["transfer"]["source"] == "model.safetensors"


def test_paths_in_trainer_messages_become_file_names_before_anyone_sees_them(world, runs):
    job = _queued(world.alice, runs["data"], SPEC)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    image = default_storage.path("images/ab/cdef.png")
    torch_weights = "/opt/torch/hub/checkpoints/resnet18-f37072fd.pth"
    with mock.patch.dict("os.environ", {"TORCH_HOME": "/opt/torch"}):
        JobReporter(job.pk, 1)(
            {"kind": "failed", "seq": 1, "data": {
                "reason": f"{image}: cannot be read as an image (broken)",
                "detail": [f"put {torch_weights} there", {"at": f"'{image}'"}],
            }},
        )  # fmt: skip
        tasks._finish(job.pk, 1, error=f"[Errno 2] No such file: '{image}'")
    event = JobEvent.objects.get(job=job)
    assert event.data == {
        "reason": "cdef.png: cannot be read as an image (broken)",
        "detail": ["put resnet18-f37072fd.pth there", {"at": "'cdef.png'"}],
    }
    job.refresh_from_db()
    assert job.error == "[Errno 2] No such file: 'cdef.png'"


def test_only_staff_see_where_the_workers_keep_imagenet_weights(world, runs, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", "/opt/torch-weights")
    url = f"/datasets/{runs['data'].pk}/train/"
    assert "/opt/torch-weights" not in world.client("alice").get(url).content.decode()
    assert "/opt/torch-weights" in world.client("teacher").get(url).content.decode()
