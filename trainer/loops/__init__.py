"""One loop module per kind of problem; the driver (trainer/driver.py) runs whichever the
spec's kind names. Adding a kind is adding `trainer/loops/<kind>.py` with:

    KIND          "detection"
    FIGURES       names of an evaluation's figures ("loss", "map50", "map"): val_<name> in events
    WATCH         the epoch figure early stopping watches without a setting ("val_map50")
    prepare(spec, device) -> driver.Prepared       decode the data once, onto the device
    build_model(p) -> nn.Module                    transfer source and mode applied
    head_parameters(model) -> [Parameter]          trained at the full rate when fine-tuning
    make_step(p, model, amp_dtype) -> driver.Step  what train_step and evaluate get
    train_step(step, index, generator) -> {name: 0-d tensor}   "loss" is back-propagated
    evaluate(step, split) -> Evaluation | None     .figures, .to_dict(), .predictions
    export(p, model, out_dir, result)              model.safetensors, TorchScript, ONNX, card
    (folds(p, k, seed) and FOLD_FIGURE where the kind offers k folds)

and, for a trained run's files (trainer/inference.py; no driver involved):

    predict(model_dir, images) -> [dict]           one JSON-ready answer per PIL image, in its
                                                   own pixels ("Try it", pre-annotation)
    score(model_dir, items, classes, keypoints=None) -> Evaluation-like
                                                   figures on a hidden test set's manifest
                                                   items; .to_dict() holds what an assignment
                                                   of the kind ranks by

This package imports nothing heavy: `trainer.kinds.trainable()` finds the modules without
importing torch.
"""

from pathlib import Path

from trainer.events import Reporter
from trainer.spec import JobSpec


def run(spec: JobSpec, out_dir: str | Path, reporter: Reporter, **options) -> dict:
    """Train with the loop of the spec's kind (trainer.driver.run)."""
    from trainer import driver  # torch: only when something is trained

    return driver.run(spec, out_dir, reporter, **options)
