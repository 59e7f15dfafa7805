"""Per-image test predictions: the file behind the confusion matrix's cells."""

import json

import pytest
import torch

from trainer import driver, loops
from trainer.events import ListReporter
from trainer.metrics import evaluate_logits, predictions
from trainer.spec import load_spec


def test_predictions_keep_the_split_order_with_confidence():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])  # (N=3, C=2)
    rows = predictions(logits, torch.tensor([0, 0, 1]), ["a", "b", "c"])
    assert [(r["id"], r["true"], r["predicted"]) for r in rows] == [
        ("a", 0, 0),
        ("b", 0, 1),
        ("c", 1, 0),
    ]
    assert rows[2]["confidence"] == 0.5


def test_the_result_dict_leaves_the_predictions_out():
    logits, targets = torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0])
    evaluation = evaluate_logits(logits, targets, [1, 2], num_classes=2, loss=0.5)
    assert len(evaluation.predictions) == 2
    assert "predictions" not in evaluation.to_dict()


@pytest.mark.parametrize(
    ("split", "name"), [("test", "TEST_PREDICTIONS"), ("val", "VAL_PREDICTIONS")]
)
def test_a_run_writes_one_prediction_per_image_matching_the_confusion(
    small_digits, tmp_path, split, name
):
    spec = load_spec({"data": small_digits, "model": "logistic", "input_size": 8, "epochs": 1})
    result = loops.run(spec, tmp_path, ListReporter())
    rows = json.loads((tmp_path / getattr(driver, name)).read_text())
    ids = [item["id"] for item in small_digits["items"] if item["split"] == split]
    assert [row["id"] for row in rows] == ids
    confusion = [[0] * 10 for _ in range(10)]
    for row in rows:
        confusion[row["true"]][row["predicted"]] += 1
        assert 0 < row["confidence"] <= 1
    assert confusion == result[split]["confusion"]


def test_a_split_without_images_gets_no_predictions_file(small_digits, tmp_path):
    data = {**small_digits, "items": [i for i in small_digits["items"] if i["split"] != "test"]}
    spec = load_spec({"data": data, "model": "logistic", "input_size": 8, "epochs": 1})
    result = loops.run(spec, tmp_path, ListReporter())
    assert result["test"] is None
    assert not (tmp_path / driver.TEST_PREDICTIONS).exists()
    assert json.loads((tmp_path / driver.VAL_PREDICTIONS).read_text())
