"""`GET /api/v1/models[?kind=…]`: what can be trained with what, from the trainer's catalog, with
the default marked, descriptions in the reader's language and the weights found offline."""

import pytest
from django.test import Client

from tests.conftest import assert_api_error
from trainer import catalog, kinds

pytestmark = pytest.mark.django_db


def _get(world, query="", persona="alice", language="en"):
    return Client().get(
        f"/api/v1/models{query}", HTTP_ACCEPT_LANGUAGE=language, **world.bearer(persona)
    )


def test_the_detection_models_are_listed_with_the_default_marked(world):
    body = _get(world, "?kind=detection").json()
    assert body["kind"] == "detection"
    assert [m["name"] for m in body["models"]] == catalog.names("detection")
    assert {m["kind"] for m in body["models"]} == {"detection"}
    assert [m["name"] for m in body["models"] if m["default"]] == ["centernet_tiny"]
    tiny = next(m for m in body["models"] if m["name"] == "centernet_tiny")
    entry = catalog.get("centernet_tiny")
    assert tiny == {
        "name": "centernet_tiny",
        "kind": "detection",
        "family": "detector",
        "default": True,
        "description": entry.description["en"],
        "descriptions": entry.description,
        "parameters": entry.parameters,
        "default_input_size": 64,
        "min_input_size": 32,
        "channels": 3,
        "weights": None,
        "weights_available": False,
        "imagenet": False,
        "coco": False,
        "cpu_note": None,
    }


def test_without_a_kind_every_model_is_listed_one_default_per_kind(world):
    body = _get(world).json()
    assert body["kind"] is None
    assert [m["name"] for m in body["models"]] == catalog.names()
    defaults = {m["kind"]: m["name"] for m in body["models"] if m["default"]}
    assert defaults["classification"] == "simple_cnn"
    assert defaults["detection"] == "centernet_tiny"
    assert body["trainable_kinds"] == list(kinds.trainable())
    assert "Conv2d" in body["layer_types"]


def test_the_classification_models_keep_their_families(world):
    models = _get(world, "?kind=classification").json()["models"]
    families = {m["name"]: m["family"] for m in models}
    assert families["simple_cnn"] == "preset" and families["resnet18"] == "torchvision"
    assert "centernet_tiny" not in families


def test_a_kind_without_models_answers_an_empty_list(world):
    empty = [kind for kind in kinds.KINDS if not catalog.models(kind)]
    for kind in empty:
        body = _get(world, f"?kind={kind}").json()
        assert body["models"] == [], kind


@pytest.mark.parametrize("kind", ["boxes", "Detection", "task", ""])
def test_an_unknown_kind_answers_400_naming_the_field_and_the_kinds(world, kind):
    body = assert_api_error(_get(world, f"?kind={kind}"), 400)
    assert list(body["errors"]) == ["kind"]
    for known in kinds.KINDS:
        assert known in body["errors"]["kind"]


def test_an_overlong_kind_is_refused_without_a_500(world):
    response = _get(world, "?kind=" + "x" * 5000)
    assert response.status_code in (400, 422)
    assert_api_error(response, response.status_code)


def test_the_descriptions_follow_the_readers_language_and_give_both(world):
    models = _get(world, "?kind=classification", language="ja").json()["models"]
    simple = next(m for m in models if m["name"] == "simple_cnn")
    assert simple["description"] == catalog.get("simple_cnn").description["ja"]
    assert simple["descriptions"]["en"] == catalog.get("simple_cnn").description["en"]


def test_a_slow_models_cpu_note_is_in_the_readers_language(world, monkeypatch):
    slow = catalog.ModelEntry(
        "slow_detector", "detection", "torchvision", {"ja": "遅い検出器", "en": "A slow detector"},
        1_000_000, 224, 32, 3, "trainer.models.tv_detectors",
        cpu_note={"ja": "CPUでは1枚/秒未満", "en": "Under 1 image/s on a CPU"},
    )  # fmt: skip
    monkeypatch.setattr(catalog, "_MODELS", [*catalog._MODELS, slow])
    for language, note in (("en", "Under 1 image/s on a CPU"), ("ja", "CPUでは1枚/秒未満")):
        models = _get(world, "?kind=detection", language=language).json()["models"]
        assert next(m for m in models if m["name"] == "slow_detector")["cpu_note"] == note


def test_pretrained_weights_are_reported_only_when_on_this_server(world, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    models = {m["name"]: m for m in _get(world, "?kind=classification").json()["models"]}
    assert models["resnet18"]["weights"] == "imagenet"
    assert not models["resnet18"]["weights_available"] and not models["resnet18"]["imagenet"]
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / catalog.get("resnet18").weights_file).write_bytes(b"weights")
    models = {m["name"]: m for m in _get(world, "?kind=classification").json()["models"]}
    assert models["resnet18"]["weights_available"] and models["resnet18"]["imagenet"]
    assert not models["resnet34"]["weights_available"]
    assert models["simple_cnn"]["weights"] is None and not models["simple_cnn"]["imagenet"]


def test_signing_in_is_needed(world):
    assert_api_error(_get(world, "?kind=detection", persona="anon"), 401)


@pytest.mark.parametrize("persona", ["alice", "carol", "ta", "teacher", "other_teacher"])
def test_every_signed_in_persona_reads_the_same_list(world, persona):
    assert _get(world, "?kind=detection", persona=persona).status_code == 200


def test_the_openapi_schema_documents_the_kind_and_the_answer():
    schema = Client().get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/models"]["get"]
    kind = next(p for p in operation["parameters"] if p["name"] == "kind")
    assert kind["in"] == "query" and not kind.get("required", False)
    described = kind.get("schema", {})
    enum = described.get("enum") or next(
        (branch["enum"] for branch in described.get("anyOf", []) if "enum" in branch), None
    )
    assert enum == list(kinds.KINDS)
    assert "400" in operation["responses"]
    properties = schema["components"]["schemas"]["ModelOut"]["properties"]
    for field in ("default", "kind", "family", "parameters", "weights_available", "cpu_note"):
        assert field in properties, field


# --- `?task=`: the deprecated old name of `kind` ---------------------------------------------


def test_task_is_read_as_the_old_name_of_kind(world):
    body = _get(world, "?task=detection").json()
    assert body["kind"] == "detection"
    assert {m["kind"] for m in body["models"]} == {"detection"}
    both = _get(world, "?kind=detection&task=detection").json()
    assert both["models"] == body["models"]


@pytest.mark.parametrize("query", ["?task=boxes", "?kind=detection&task=classification"])
def test_a_bad_or_disagreeing_task_answers_400_naming_task(world, query):
    body = assert_api_error(_get(world, query), 400)
    assert list(body["errors"]) == ["task"]


def test_the_schema_marks_task_deprecated_on_models_and_on_the_job_spec():
    schema = Client().get("/api/v1/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/models"]["get"]["parameters"]}
    assert parameters["task"]["deprecated"] is True and not parameters["kind"].get("deprecated")
    spec = schema["components"]["schemas"]["JobIn"]["properties"]["spec"]["properties"]
    assert spec["task"]["deprecated"] is True and not spec["kind"].get("deprecated")
    assert "detection" in spec["task"]["enum"]


def test_coco_weights_are_reported_only_when_on_this_server(world, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    models = {m["name"]: m for m in _get(world, "?kind=detection").json()["models"]}
    assert not models["fasterrcnn_resnet50_fpn"]["coco"]
    assert not models["centernet_tiny"]["coco"]  # the lecture's detector has no COCO weights
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / catalog.get("fasterrcnn_resnet50_fpn").coco_weights_file).write_bytes(b"weights")
    models = {m["name"]: m for m in _get(world, "?kind=detection").json()["models"]}
    assert models["fasterrcnn_resnet50_fpn"]["coco"]
    assert not models["retinanet_resnet50_fpn"]["coco"]
