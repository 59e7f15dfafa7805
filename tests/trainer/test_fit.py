"""The training loop: end to end on the digits, resume, transfer modes, k folds, failures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trainer import driver, loops
from trainer.events import ListReporter
from trainer.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _spec(data, **fields):
    return load_spec({"data": data, **fields}, local_files=True)  # transfer from files


def _kinds(reporter) -> list[str]:
    return [event["kind"] for event in reporter.events]


@pytest.mark.slow
def test_simple_cnn_learns_the_digits_to_95_percent(digits_data, tmp_path):
    reporter = ListReporter()
    spec = _spec(
        digits_data,
        model="simple_cnn",
        input_size=32,
        epochs=5,
        lr=5e-3,
        schedule="onecycle",
        batch_size=64,
        seed=1,
    )
    result = loops.run(spec, tmp_path, reporter)
    assert result["test"]["accuracy"] >= 0.95, result["test"]["accuracy"]
    kinds = _kinds(reporter)
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch") == 5 and kinds.count("checkpoint") == 5
    seqs = [event["seq"] for event in reporter.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    epoch = next(e for e in reporter.events if e["kind"] == "epoch")["data"]
    assert {
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "images_per_s",
    } <= set(epoch)
    for name in ("model.safetensors", "model.torchscript.pt", "model_card.json"):
        assert (tmp_path / name).exists(), name
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["classes"] == [str(d) for d in range(10)] and card["input"]["size"] == [32, 32]


def _cancel_at_epoch(reporter, epoch):
    return lambda: any(
        e["kind"] == "epoch" and e["data"]["epoch"] == epoch - 1 for e in reporter.events
    )


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(small_digits, tmp_path):
    fields = dict(
        model="simple_cnn",
        input_size=16,
        epochs=3,
        batch_size=32,
        seed=3,
        augmentation={"preset": "lecture"},
    )
    whole = tmp_path / "whole"
    loops.run(_spec(small_digits, **fields), whole, ListReporter())

    broken = tmp_path / "broken"
    reporter = ListReporter()
    with pytest.raises(driver.Cancelled):
        loops.run(
            _spec(small_digits, **fields), broken, reporter, cancel=_cancel_at_epoch(reporter, 3)
        )
    assert reporter.events[-1]["kind"] == "failed"
    resumed = ListReporter()
    loops.run(_spec(small_digits, **fields), broken, resumed, resume=True)
    assert resumed.events[0]["data"]["resumed_from"] == 2
    a, b = load_file(whole / "model.safetensors"), load_file(broken / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _source(small_digits, tmp_path):
    out = tmp_path / "source"
    loops.run(_spec(small_digits, model="simple_cnn", input_size=16, epochs=1), out, ListReporter())
    return str(out / "model.safetensors")


def test_transfer_modes_behave_as_the_lecture_says(small_digits, tmp_path):
    source = _source(small_digits, tmp_path)
    before = load_file(source)
    runs = {}
    for mode in ("scratch", "feature_extraction", "fine_tuning"):
        out = tmp_path / mode
        spec = _spec(
            small_digits,
            model="simple_cnn",
            input_size=16,
            epochs=1,
            seed=7,
            transfer={"source": source, "mode": mode},
        )
        loops.run(spec, out, ListReporter())
        runs[mode] = load_file(out / "model.safetensors")
    head = {key for key in before if key.startswith(_head_prefix(before))}
    backbone = [key for key in before if key not in head and before[key].is_floating_point()]
    # Feature extraction trains only the classifier: no backbone weight moves.
    assert all(torch.equal(runs["feature_extraction"][k], before[k]) for k in backbone)
    # Fine-tuning trains everything, starting from the source.
    assert any(not torch.equal(runs["fine_tuning"][k], before[k]) for k in backbone)
    # From scratch ignores the source: it equals a run that had no source at all.
    plain = tmp_path / "plain"
    loops.run(
        _spec(small_digits, model="simple_cnn", input_size=16, epochs=1, seed=7),
        plain,
        ListReporter(),
    )
    none = load_file(plain / "model.safetensors")
    assert all(torch.equal(runs["scratch"][k], none[k]) for k in none)


def _head_prefix(state: dict) -> str:
    return sorted(state)[-1].rsplit(".", 1)[0]  # the last layer's name (the classifier)


def test_k_fold_reports_mean_and_std(small_digits, tmp_path):
    reporter = ListReporter()
    spec = _spec(small_digits, model="logistic", input_size=8, epochs=2, kfold=3)
    summary = loops.run(spec, tmp_path, reporter)
    assert len(summary["folds"]) == 3
    assert summary["std_accuracy"] >= 0 and 0 < summary["mean_accuracy"] <= 1
    assert reporter.events[-1]["kind"] == "finished"


def test_exploding_loss_fails_with_advice(small_digits, tmp_path):
    reporter = ListReporter()
    spec = _spec(
        small_digits,
        model="mlp_keras",
        input_size=8,
        epochs=3,
        optimizer="sgd",
        lr=10.0,
        momentum=0.99,
    )
    with pytest.raises(driver.TrainingFailed):
        loops.run(spec, tmp_path, reporter)
    failed = reporter.events[-1]
    assert failed["kind"] == "failed" and "lower learning rate" in failed["data"]["reason"]


def test_cli_runs_a_spec_and_lists_models(small_digits, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps({"model": "logistic", "input_size": 8, "epochs": 1, "data": small_digits})
    )
    run = subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(spec_file), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[0]["kind"] == "started" and events[-1]["kind"] == "finished"
    models = subprocess.run(
        [sys.executable, "-m", "trainer", "models"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "simple_cnn" in models and "resnet18" in models
    summary = subprocess.run(
        [sys.executable, "-m", "trainer", "summary", str(spec_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "total parameters: 650" in summary  # 8*8*10 + 10


def test_a_source_of_another_architecture_is_a_spec_error(small_digits, tmp_path):
    from trainer.spec import SpecError

    source = _source(small_digits, tmp_path)  # a simple_cnn checkpoint
    with pytest.raises(SpecError) as refused:
        _spec(
            small_digits,
            model="lenet_lecture",
            input_size=32,
            epochs=1,
            transfer={"source": source, "mode": "fine_tuning"},
        )
    assert "another architecture" in refused.value.errors["transfer.source"]
    # The same architecture with another class count is fine: the classifier is replaced.
    fewer = {**small_digits, "classes": small_digits["classes"][:10]}
    _spec(
        fewer, model="simple_cnn", input_size=16, transfer={"source": source, "mode": "fine_tuning"}
    )


def test_kinds_without_a_loop_are_refused_clearly(small_digits, tmp_path, monkeypatch):
    from trainer import kinds
    from trainer.spec import SpecError

    monkeypatch.setattr(kinds, "trainable", lambda: ("classification", "detection"))
    with pytest.raises(SpecError) as refused:
        _spec({**small_digits}, kind="segmentation")
    assert "not available yet" in refused.value.errors["kind"]


def test_early_stopping_stops_when_validation_stops_improving(small_digits, tmp_path):
    reporter = ListReporter()
    spec = _spec(
        small_digits,
        model="logistic",
        input_size=8,
        epochs=6,
        lr=1e-12,
        early_stopping={"patience": 1, "metric": "val_acc"},
    )
    loops.run(spec, tmp_path, reporter)
    epochs = [e for e in reporter.events if e["kind"] == "epoch"]
    assert len(epochs) == 2  # epoch 2 did not beat epoch 1: patience 1 is used up
    assert any("Early stopping" in e["data"].get("message", "") for e in reporter.events)


def test_short_epochs_leave_exact_batch_norm_statistics(small_digits, tmp_path):
    """Few steps an epoch: the averages are recomputed, so validation is not a coin toss."""
    reporter = ListReporter()
    spec = _spec(
        small_digits,
        model="simple_cnn",
        input_size=16,
        epochs=3,
        lr=5e-3,
        schedule="onecycle",
        batch_size=64,
        seed=0,
    )
    loops.run(spec, tmp_path, reporter)
    last = [e for e in reporter.events if e["kind"] == "epoch"][-1]["data"]
    assert last["val_acc"] >= 0.7, last  # ~0.1 before the fix: chance for 10 classes


def test_refresh_batch_norm_sets_the_true_averages():
    from trainer import data

    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4).repeat(5, 1, 1, 1)
    split = data.Split(images, torch.zeros(10, dtype=torch.int64), list(range(10)))
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 2))
    normalise = data.Normalise([0.0], [1.0], torch.device("cpu"))
    step = driver.Step(None, None, model, lambda split, index: normalise(split.images[index]))
    # equal batches of 5: the cumulative average of batch means is the mean
    driver.refresh_batch_norm(step, split, 5, [])
    expected = images.float().mean() / 255  # what the model sees after Normalise
    assert torch.allclose(model[0].running_mean, expected.view(1), atol=1e-4)
    assert model[0].momentum == 0.1  # restored


def test_refresh_batch_norm_reads_a_sample_spread_over_the_split(monkeypatch):
    from trainer import data

    monkeypatch.setattr(driver, "PRECISE_BN_IMAGES", 4)
    images = torch.cat([torch.zeros(4, 1, 2, 2), torch.full((6, 1, 2, 2), 255.0)]).to(torch.uint8)
    split = data.Split(images, torch.zeros(10, dtype=torch.int64), list(range(10)))
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    normalise = data.Normalise([0.0], [1.0], torch.device("cpu"))
    seen = []

    def inputs(split, index):
        seen.append(index.tolist())
        return normalise(split.images[index])

    step = driver.Step(None, None, model, inputs)
    driver.refresh_batch_norm(step, split, 2, [])
    # four images spread evenly over the ten (a split ordered by class gives every class its
    # share), in order, in batches of two
    assert seen == [[0, 2], [5, 7]]
    expected = images[[0, 2, 5, 7]].float().mean() / 255
    assert torch.allclose(model[0].running_mean, expected.view(1), atol=1e-6)
