"""Resuming keeps early stopping's count of epochs without improvement, and k folds resume
fold by fold (trainer.driver)."""

import pytest

from trainer import driver, export, loops
from trainer.events import ListReporter
from trainer.spec import load_spec


def _spec(data, **fields):
    return load_spec({"data": data, **fields}, local_files=True)


def _cancel_after(reporter, epoch, fold=0):
    """Cancel once `epoch` of `fold` has ended (its checkpoint is written just before)."""
    return lambda: any(
        e["kind"] == "checkpoint" and (e["data"]["fold"], e["data"]["epoch"]) == (fold, epoch)
        for e in reporter.events
    )


def _epochs(reporter):
    return [
        (e["data"]["fold"], e["data"]["epoch"]) for e in reporter.events if e["kind"] == "epoch"
    ]


# A learning rate too small to change an accuracy: every epoch after the first is stale.
STALE = dict(
    model="logistic",
    input_size=8,
    epochs=8,
    lr=1e-9,
    seed=2,
    early_stopping={"patience": 2, "metric": "val_acc"},
)


def test_a_resumed_run_stops_early_where_the_uninterrupted_one_stops(small_digits, tmp_path):
    whole = ListReporter()
    loops.run(_spec(small_digits, **STALE), tmp_path / "whole", whole)
    assert [epoch for _, epoch in _epochs(whole)] == [1, 2, 3]  # epochs 2 and 3: no better

    cut = ListReporter()
    with pytest.raises(driver.Cancelled):
        loops.run(_spec(small_digits, **STALE), tmp_path / "cut", cut, cancel=_cancel_after(cut, 2))
    state = export.load_checkpoint(tmp_path / "cut" / driver.CHECKPOINT)
    assert state["epoch"] == 2 and state["extra"]["stale"] == 1
    resumed = ListReporter()
    loops.run(_spec(small_digits, **STALE), tmp_path / "cut", resumed, resume=True)
    assert [epoch for _, epoch in _epochs(resumed)] == [3]  # not 3 and 4: the count went on


def test_a_run_killed_after_stopping_early_trains_no_further_epoch(small_digits, tmp_path):
    loops.run(_spec(small_digits, **STALE), tmp_path, ListReporter())  # stopped after 3
    resumed = ListReporter()
    result = loops.run(_spec(small_digits, **STALE), tmp_path, resumed, resume=True)
    assert _epochs(resumed) == [] and result["test"] is not None


def test_k_folds_resume_fold_by_fold_to_the_same_summary(small_digits, tmp_path):
    fields = dict(model="logistic", input_size=8, epochs=2, kfold=3, seed=4)
    whole = loops.run(_spec(small_digits, **fields), tmp_path / "whole", ListReporter())

    cut = ListReporter()
    with pytest.raises(driver.Cancelled):
        loops.run(
            _spec(small_digits, **fields), tmp_path / "cut", cut, cancel=_cancel_after(cut, 1, 1)
        )
    resumed = ListReporter()
    summary = loops.run(_spec(small_digits, **fields), tmp_path / "cut", resumed, resume=True)
    started = [(e["fold"], e["resumed_from"]) for e in resumed.of_kind("started")]
    assert started == [(0, 2), (1, 1), (2, 0)]  # done, cut after its first epoch, not begun
    assert _epochs(resumed) == [(1, 2), (2, 1), (2, 2)]
    assert summary["folds"] == pytest.approx(whole["folds"], abs=1e-12)


def test_the_validation_split_is_evaluated_once_per_epoch_and_the_last_is_the_result(
    small_digits, tmp_path, monkeypatch
):
    """The final model is the last epoch's: its validation figures are not computed again, and
    a run with no epoch left to train (resumed after its last) still evaluates both splits."""
    from trainer.loops import classification

    evaluated = []
    evaluate = classification.evaluate
    monkeypatch.setattr(
        classification,
        "evaluate",
        lambda step, split: evaluated.append(split) or evaluate(step, split),
    )
    reporter = ListReporter()
    spec = _spec(small_digits, model="logistic", input_size=8, epochs=3, seed=1)
    result = loops.run(spec, tmp_path, reporter)
    assert len(evaluated) == 3 + 1  # val after each epoch, then test once
    last = reporter.of_kind("epoch")[-1]
    assert result["val"] == last["val_metrics"] and result["val"]["accuracy"] > 0

    evaluated.clear()
    again = loops.run(spec, tmp_path, ListReporter(), resume=True)  # nothing left to train
    assert len(evaluated) == 2 and again["val"] == result["val"]
