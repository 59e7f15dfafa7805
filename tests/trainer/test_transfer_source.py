"""Where a transfer starts: a spec a user sent names an earlier run, never a file."""

import pytest

from trainer.spec import SpecError, load_spec

DATA = {"classes": ["cat", "dog"], "items": [{"path": "a.png", "label": 0}]}


def _spec(source: str) -> dict:
    return {
        "model": "simple_cnn",
        "data": DATA,
        "transfer": {"source": source, "mode": "fine_tuning"},
    }


def _refusal(source: str, **options) -> str:
    with pytest.raises(SpecError) as refused:
        load_spec(_spec(source), check_registry=False, **options)
    return refused.value.errors["transfer.source"]


@pytest.mark.parametrize(
    "source",
    [
        "/srv/manabi/media/jobs/7/model.safetensors",
        "../7/model.safetensors",
        "jobs/7/model.safetensors",
        "model.safetensors",
        "job:7/../8",
        "job:0",
        "job:-3",
        "job:12345678901234567890123",  # beyond any database id
        "job:",
        "JOB:7",
        "COCO",  # the sources are lower case, as the schema lists them
    ],
)
def test_a_spec_from_a_user_names_no_file_and_no_malformed_run(source):
    assert "choose none, imagenet, coco or an earlier run (job:<id>)" in _refusal(source)


@pytest.mark.parametrize("source", ["none", "imagenet", "coco", "job:7", "job:123456789012345678"])
def test_a_spec_from_a_user_names_none_imagenet_coco_or_an_earlier_run(source):
    mode = "scratch" if source == "none" else "fine_tuning"
    raw = {**_spec(source), "transfer": {"source": source, "mode": mode}}
    assert load_spec(raw, check_registry=False).transfer.source == source


def test_only_a_caller_on_its_own_machine_names_a_file_and_then_no_run():
    path = "/srv/runs/7/model.safetensors"
    spec = load_spec(_spec(path), check_registry=False, local_files=True)
    assert spec.transfer.source == path
    assert "name its model.safetensors file" in _refusal("job:7", local_files=True)


def test_the_json_schema_documents_the_sources_a_user_may_send():
    from trainer.spec import JobSpec

    schema = JobSpec.model_json_schema()["$defs"]["Transfer"]["properties"]["source"]
    assert schema["examples"] == ["none", "imagenet", "coco", "job:12"]
    assert "job:<id>" in schema["description"]
