"""One training loop per kind of problem; `run` picks the one the spec asks for."""

from pathlib import Path

from trainer.events import Reporter
from trainer.spec import JobSpec, SpecError

KINDS_READY = ("classification",)


def run(spec: JobSpec, out_dir: str | Path, reporter: Reporter, **options) -> dict:
    """Train with the loop of the spec's task (detection, segmentation, keypoints: to come)."""
    if spec.task == "classification":
        from trainer.loops import classification

        return classification.run(spec, out_dir, reporter, **options)
    raise SpecError({"task": f"training for {spec.task} is not available yet; classification is"})
