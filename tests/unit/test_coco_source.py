"""`transfer.source: "coco"` on the web side: `validate_job` (the API, the Train page and the
worker) accepts it only for a model with COCO weights whose file is on this server, naming
`spec.transfer.source`; the Train page offers "COCO" only when a model's file is there."""

import pytest
from django.http import QueryDict
from django.test import Client

from tests.conftest import assert_api_error
from tests.unit.test_validate_job import _dataset as ready_classes
from trainer import catalog
from webapp.datasets.models import Dataset
from webapp.errors import Refused
from webapp.jobs import launch_form, spec_check, tasks
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

FIELD = "spec.transfer.source"
COCO = {"source": "coco", "mode": "fine_tuning"}


@pytest.fixture(autouse=True)
def torch_home(tmp_path, monkeypatch):
    """An empty weights folder of the test's own (where the workers would read them)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def _dataset(world, kind, classes=("circle", "square")) -> Dataset:
    return ready_classes(world, kind, classes)


def _provide(folder, model: str) -> None:
    (folder / catalog.get(model).coco_weights_file).write_bytes(b"weights")


def _problems(world, dataset, spec) -> dict[str, str]:
    return spec_check.validate_job(world.alice, dataset, spec)[1]


def test_coco_is_accepted_for_a_detector_whose_file_is_here(world, torch_home):
    boxes = _dataset(world, "detection")
    spec = {"model": "fasterrcnn_mobilenet_v3_large_fpn", "transfer": COCO}
    problem = _problems(world, boxes, spec)[FIELD]
    assert "COCO weights of fasterrcnn_mobilenet_v3_large_fpn" in problem
    assert "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth" in problem  # for the administrator
    (torch_home / catalog.get(spec["model"]).weights_file).write_bytes(b"imagenet")
    assert FIELD in _problems(world, boxes, spec)  # ImageNet's file is not COCO's
    _provide(torch_home, spec["model"])
    assert _problems(world, boxes, spec) == {}
    assert spec_check.source_problem(world.alice, spec) is None


@pytest.mark.parametrize(
    ("kind", "model"),
    [("segmentation", "maskrcnn_resnet50_fpn"), ("segmentation", "deeplabv3_resnet50")],
)
def test_coco_is_accepted_for_segmenters_whose_file_is_here(world, torch_home, kind, model):
    dataset = _dataset(world, kind)
    spec = {"model": model, "transfer": COCO}
    assert "not on this server" in _problems(world, dataset, spec)[FIELD]
    _provide(torch_home, model)
    assert _problems(world, dataset, spec) == {}


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("detection", "centernet_tiny"),  # the lecture's detector: trained here only
        ("segmentation", "unet"),
        ("classification", "resnet18"),  # ImageNet weights, no COCO ones
        ("classification", "simple_cnn"),
    ],
)
def test_coco_is_refused_for_a_model_without_coco_weights_naming_the_field(
    world, torch_home, kind, model
):
    for entry in catalog.models():  # every COCO file there: the model is what is refused
        if entry.coco_weights_file:
            _provide(torch_home, entry.name)
    problem = _problems(world, _dataset(world, kind), {"model": model, "transfer": COCO})[FIELD]
    assert f"{model} has no COCO weights" in problem


def test_coco_is_refused_for_a_model_built_from_layers(world):
    layers = [{"type": "Conv2d", "filters": 4, "kernel": 3}, {"type": "Flatten"}]
    problems = _problems(world, _dataset(world, "classification"), {"model": layers,
                                                                     "transfer": COCO})  # fmt: skip
    assert "built from layers has no COCO weights" in problems[FIELD]


def test_a_misspelt_source_is_still_refused_listing_coco(world):
    spec = {"model": "fcos_resnet50_fpn", "transfer": {"source": "COCO", "mode": "fine_tuning"}}
    assert "“coco”" in _problems(world, _dataset(world, "detection"), spec)[FIELD]


def test_the_api_and_the_worker_refuse_absent_coco_weights_on_the_field(world, torch_home):
    boxes = _dataset(world, "detection")
    spec = {"model": "retinanet_resnet50_fpn", "transfer": COCO}
    body = {"dataset": boxes.pk, "spec": spec}
    for url in ("/api/v1/jobs/validate", "/api/v1/jobs"):
        response = Client().post(
            url, body, content_type="application/json", **world.bearer("alice")
        )
        assert "COCO" in assert_api_error(response, 422)["errors"][FIELD]
    assert not Job.objects.exists()
    job = Job.objects.create(course=world.course, owner=world.alice, dataset=boxes,
                             dataset_version=1, spec=spec)  # fmt: skip
    with pytest.raises(Refused) as refused:  # the file was taken away after the check
        tasks.build_spec(job)
    assert refused.value.field == FIELD


# --- the Train page ------------------------------------------------------------------------------


def _page(world, dataset, language="en") -> str:
    client = world.client("alice")
    url = f"/datasets/{dataset.pk}/train/"
    return client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()


def test_the_train_page_offers_coco_only_when_a_models_file_is_here(world, torch_home):
    boxes = _dataset(world, "detection")
    assert 'value="coco"' not in _page(world, boxes)
    _provide(torch_home, "ssdlite320_mobilenet_v3_large")
    page = _page(world, boxes)
    assert '<option value="coco">COCO (torchvision' in page
    assert 'value="ssdlite320_mobilenet_v3_large" data-imagenet="0" data-coco="1"' in page
    assert 'value="fcos_resnet50_fpn" data-imagenet="0" data-coco="0"' in page  # JS disables it
    assert "COCO（torchvision" in _page(world, boxes, "ja")
    # A classification page never offers it: no classifier has COCO weights.
    _provide(torch_home, "fcn_resnet50")
    assert 'value="coco"' not in _page(world, _dataset(world, "classification"))


def test_the_train_page_submits_coco_and_keeps_it_chosen_when_refused(world, torch_home):
    boxes = _dataset(world, "detection")
    _provide(torch_home, "ssdlite320_mobilenet_v3_large")
    data = QueryDict(mutable=True)
    fields = {
        **launch_form.initial("detection").values,
        "model_source": "torchvision",
        "torchvision": "fcos_resnet50_fpn",  # its COCO file is not here
        "transfer_source": "coco",
        "transfer_mode": "fine_tuning",
    }
    for name, value in fields.items():
        if value is True:
            data[name] = "1"
        elif value not in (False, None):
            data[name] = str(value)
    url = f"/datasets/{boxes.pk}/train/"
    response = world.client("alice").post(url, data)
    assert response.status_code == 200 and not Job.objects.exists()
    assert "COCO weights of fcos_resnet50_fpn" in response.context["errors"]["transfer_source"]
    assert '<option value="coco" selected>' in response.content.decode()
    data["torchvision"] = "ssdlite320_mobilenet_v3_large"
    response = world.client("alice").post(url, data)
    job = Job.objects.get()
    assert response.status_code == 302
    assert job.spec["transfer"] == {"source": "coco", "mode": "fine_tuning"}
