"""Trainer events: numbered without gaps, batch events throttled, payloads JSON-ready."""

import io
import json
import math

import pytest
from pydantic import ValidationError

from trainer.events import (
    KINDS,
    EpochEvent,
    Event,
    EventStream,
    FinishedEvent,
    JsonLinesReporter,
    ListReporter,
    StartedEvent,
    batch,
    checkpoint,
    failed,
    log,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_stream(**options):
    reporter, clock = ListReporter(), FakeClock()
    stream = EventStream(reporter, clock=clock, wall_clock=lambda: 1_700_000_000.0, **options)
    return stream, reporter, clock


def test_seq_increases_by_one_per_event():
    stream, reporter, _ = make_stream()
    assert stream.seq == 0
    for kind in ("started", "log", "epoch", "checkpoint", "finished"):
        stream.emit(kind)
    assert [event["seq"] for event in reporter.events] == [1, 2, 3, 4, 5]
    assert stream.seq == 5


def test_emit_returns_the_event_it_sent():
    stream, reporter, _ = make_stream()
    event = stream.emit("log", **log("hello"))
    assert isinstance(event, Event)
    assert event.to_dict() == reporter.events[0]
    expected = {"message": "hello", "level": "info"}
    assert reporter.events[0] == {
        "kind": "log",
        "seq": 1,
        "time": 1_700_000_000.0,
        "data": expected,
    }


def test_resumed_stream_continues_after_the_stored_seq():
    stream, reporter, _ = make_stream(start_seq=41)
    stream.emit("log", **log("resumed from checkpoint"))
    assert reporter.events[0]["seq"] == 42


def test_unknown_kind_is_refused():
    stream, _, _ = make_stream()
    with pytest.raises(ValueError, match="unknown event kind 'progress'"):
        stream.emit("progress")


def test_batch_events_are_throttled_and_the_forced_last_one_is_sent():
    stream, reporter, clock = make_stream(max_batch_per_second=5)
    sent = []
    for step in range(1, 101):  # 100 batches in one second
        clock.now = (step - 1) * 0.01
        payload = batch(epoch=1, step=step, steps=100, loss=1 / step, images_per_s=6400)
        sent.append(stream.emit("batch", force=step == 100, **payload))
    steps = [event["step"] for event in reporter.of_kind("batch")]
    assert 4 <= len(steps) <= 6 and steps[0] == 1 and steps[-1] == 100
    assert sum(event is not None for event in sent) == len(steps)
    assert [event["seq"] for event in reporter.events] == list(range(1, len(steps) + 1))


def test_throttling_touches_only_batch_events():
    stream, reporter, _ = make_stream(max_batch_per_second=1)
    stream.emit("batch", **batch(epoch=1, step=1, steps=2, loss=0.5, images_per_s=10))
    assert (
        stream.emit("batch", **batch(epoch=1, step=2, steps=2, loss=0.4, images_per_s=10)) is None
    )
    assert stream.emit("epoch") is not None
    assert [event["kind"] for event in reporter.events] == ["batch", "epoch"]


def test_zero_rate_sends_only_forced_batches():
    stream, reporter, _ = make_stream(max_batch_per_second=0)
    assert stream.emit("batch") is None
    assert stream.emit("batch", force=True) is not None
    assert len(reporter.events) == 1
    with pytest.raises(ValueError):
        EventStream(ListReporter(), max_batch_per_second=-1)


def test_batch_sent_again_once_the_interval_has_passed():
    stream, reporter, clock = make_stream(max_batch_per_second=2)
    stream.emit("batch")
    clock.now = 0.4
    assert stream.emit("batch") is None
    clock.now = 0.5
    assert stream.emit("batch") is not None


def test_started_epoch_and_finished_have_typed_shapes_not_classification_helpers():
    import trainer.events as events

    # The old helpers wrote classification's shape (num_params, train_acc, metrics), which the
    # typed models the web app reads do not accept: the shapes live in one place only.
    assert not any(hasattr(events, name) for name in ("started", "epoch", "finished"))
    with pytest.raises(ValidationError):
        StartedEvent.model_validate(
            {"spec": {}, "num_params": 1, "device": "cpu", "classes": [], "sizes": {}}
        )
    started = StartedEvent.model_validate(
        {
            "kind": "detection",
            "model": "fasterrcnn",
            "parameters": 9,
            "device": "cpu",
            "classes": ["猫"],
            "sizes": {"train": 8},
        }
    )
    assert started.kind == "detection" and started.parameters == 9
    epoch = EpochEvent.model_validate(
        {"epoch": 3, "train_loss": None, "val_map50": 0.5, "lr": 1e-3, "seconds": 2}
    )
    assert epoch.figures() == {"train_loss": None, "val_map50": 0.5}
    finished = FinishedEvent.model_validate(
        {"kind": "classification", "test": None, "val": {"loss": 0.1, "accuracy": 0.9}}
    )
    assert finished.evaluation("val").accuracy == 0.9 and finished.evaluation("test") is None


def test_payload_numbers_turn_nan_into_null():
    payload = batch(epoch=1, step=1, steps=2, loss=math.nan, images_per_s=math.inf)
    assert payload["loss"] is None and payload["images_per_s"] is None
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_payload_numbers_accept_tensors():
    torch = pytest.importorskip("torch")
    payload = batch(epoch=1, step=1, steps=1, loss=torch.tensor(0.25), images_per_s=100)
    assert payload["loss"] == 0.25 and type(payload["loss"]) is float


def test_checkpoint_and_failed_payloads(tmp_path):
    assert checkpoint(epoch=2, path=tmp_path / "e2.safetensors") == {
        "epoch": 2,
        "file": "e2.safetensors",  # a name: events never show a server's folders
    }
    reason = "loss became NaN at epoch 3 — try a lower learning rate"
    assert failed(reason) == {"reason": reason, "detail": None}
    assert failed(reason, detail="Traceback ...")["detail"] == "Traceback ..."


def test_failed_event_reaches_the_reporter():
    stream, reporter, _ = make_stream()
    stream.emit("started")
    stream.emit("failed", **failed("out of memory — try a smaller batch size"))
    assert reporter.events[-1]["kind"] == "failed"
    assert reporter.of_kind("failed") == [
        {"reason": "out of memory — try a smaller batch size", "detail": None}
    ]


def test_json_lines_reporter_writes_one_parseable_line_per_event(tmp_path):
    buffer = io.StringIO()
    stream = EventStream(JsonLinesReporter(buffer))
    started = {"model": "simple_cnn", "parameters": 1, "device": "cpu", "classes": ["猫"]}
    stream.emit("started", **started, sizes={})
    stream.emit("checkpoint", **checkpoint(epoch=1, path=tmp_path / "c.safetensors"))
    stream.emit("finished", kind="classification", test={"loss": 0.1, "accuracy": 1.0})
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    assert [event["kind"] for event in events] == ["started", "checkpoint", "finished"]
    assert [event["seq"] for event in events] == [1, 2, 3]
    assert "猫" in lines[0]  # written as text, not \\u escapes


def test_every_kind_has_a_payload_helper_or_a_typed_model():
    import trainer.events as events

    typed = {"started": StartedEvent, "epoch": EpochEvent, "finished": FinishedEvent}
    assert all(kind in typed or callable(getattr(events, kind)) for kind in KINDS)


# --- the per-kind shapes: epochs, stored results, per-image predictions ------------------------


@pytest.mark.parametrize("kind", ["classification", "detection", "segmentation", "keypoints"])
def test_each_kinds_epoch_model_names_its_epoch_figures(kind):
    import trainer.events as events
    from trainer import kinds

    shape = events.EPOCHS[kind]
    assert issubclass(shape, EpochEvent)
    assert set(kinds.EPOCH_FIGURES[kind]) <= set(shape.model_fields)
    with pytest.raises(ValidationError):  # text is no figure
        shape.model_validate({"epoch": 1, "train_loss": "0.3"})
    assert set(shape.model_validate({"epoch": 1, "train_loss": 0.3}).figures()) >= {"train_loss"}


def test_finished_events_splits_are_the_kinds_evaluations():
    import trainer.events as events

    finished = FinishedEvent.model_validate(
        {"kind": "detection", "test": {"map50": 0.5, "map": 0.3}, "val": {}}
    )
    assert isinstance(finished.test, events.DetectionEvaluation) and finished.val is None
    with pytest.raises(ValidationError):  # a classifier's evaluation is no detector's
        FinishedEvent.model_validate({"kind": "detection", "test": {"accuracy": 0.5}})
    with pytest.raises(ValidationError):  # NaN never reaches a page or a JSON column
        FinishedEvent.model_validate({"test": {"loss": math.nan, "accuracy": 0.5}})


def test_a_stored_result_is_read_as_far_as_it_fits():
    import trainer.events as events

    odd = {"test": {"miou": "0.5", "dice": True, "pixel_accuracy": 0.9, "per_class": "no"}}
    shown = events.read_result("segmentation", odd)
    assert isinstance(shown.test, events.SegmentationEvaluation) and shown.val is None
    assert (shown.test.miou, shown.test.dice, shown.test.pixel_accuracy) == (None, None, 0.9)
    assert shown.test.per_class == []
    rows = [None, {"name": "x", "pck": -1}, {"name": 3}]
    table = events.read_result("keypoints", {"val": {"per_keypoint": rows}}).val.per_keypoint
    assert table[0] is None and table[1].pck == -1.0 and table[1].labelled is None
    assert table[2].name is None  # places kept: a row's place is its keypoint
    folds = events.read_result("classification", {"folds": [0.5, 0.7], "mean_accuracy": 0.6})
    assert folds.kfold.mean_accuracy == 0.6 and folds.test is None
    assert events.read_result("nonsense", "not a dict").test is None


def test_prediction_rows_are_read_as_far_as_they_fit():
    import trainer.events as events

    rows = events.read_predictions(
        "keypoints",
        [None, 3, {"id": 1, "height": "tall", "truth": [[1, 2, 2], [None, 4, 2]], "oks": 0.5}],
    )
    assert len(rows) == 1 and rows[0].height is None and rows[0].oks == 0.5
    assert rows[0].truth == [[1.0, 2.0, 2.0], None]  # a point that does not fit: None, in place
    boxes = events.read_predictions(
        "detection", [{"id": 2, "boxes": [[0, 0, 4, 4], [1, 2]], "labels": [0, True]}]
    )
    assert boxes[0].boxes == [[0.0, 0.0, 4.0, 4.0], None] and boxes[0].labels == [0, None]
    masks = events.read_predictions("segmentation", [{"id": 3, "truth": {"1": 12}, "size": "4x6"}])
    assert masks[0].truth is None and masks[0].size is None  # a mask map is read whole or not
    assert events.read_predictions("classification", {"rows": []}) == []


def test_the_trainers_prediction_rows_fit_their_models():
    torch = pytest.importorskip("torch")
    import trainer.events as events
    from trainer import detection_metrics, keypoint_metrics, metrics

    logits, targets = torch.tensor([[2.0, 0.1], [0.2, 1.0]]), torch.tensor([0, 0])
    for row in metrics.predictions(logits, targets, [11, 12]):
        events.ClassificationPrediction.model_validate(row)
    for row in metrics.misclassified(logits, targets, [11, 12]):
        events.Misclassified.model_validate(row)
    truth = [{"boxes": [[0.0, 0.0, 10.0, 10.0]], "labels": [0]}]
    found = [{"boxes": [[30.0, 30.0, 5.0, 5.0]], "scores": [0.9], "labels": [1]}]
    for row in detection_metrics.prediction_rows([7], [(64, 48)], truth, found):
        shown = events.DetectionPrediction.model_validate(row)
        assert {e.type for e in shown.errors} == {"false_positive", "missed"}
    person = {"keypoints": [[1.0, 2.0, 2], [3.0, 4.0, 0]], "box": [0.0, 0.0, 8.0, 8.0]}
    guess = {"keypoints": [[1.5, 2.0, 0.9], [3.0, 4.0, 0.1]], "box": [0, 0, 8, 8], "score": 0.8}
    row = keypoint_metrics.prediction_row(5, 64, 64, [person], [guess], [0.1, 0.1])
    assert events.KeypointsPrediction.model_validate(row).errors[1] is None


def test_a_segmenters_prediction_row_fits_its_model():
    np = pytest.importorskip("numpy")
    pytest.importorskip("pycocotools")
    import trainer.events as events
    from trainer import segmentation_metrics

    truth, predicted = np.zeros((4, 6), np.int64), np.zeros((4, 6), np.int64)
    truth[:, 0:3], predicted[:, 1:4], predicted[3, 5] = 1, 1, 2
    row = segmentation_metrics.prediction_row(7, (60, 40), truth, predicted, 3)
    shown = events.SegmentationPrediction.model_validate(row)
    assert shown.size == [4, 6] and set(shown.predicted) == {"1", "2"} and shown.iou == 0.25
