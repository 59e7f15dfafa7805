"""Metrics against values worked out by hand on a six-sample, three-class example."""

import json
import math

import pytest
import torch

from trainer.metrics import (
    Evaluation,
    RunningMeans,
    accuracy,
    confusion_matrix,
    evaluate_logits,
    mean_std,
    misclassified,
    per_class,
    top_k_accuracy,
)

# Logits are log-probabilities, so softmax gives back exactly these rows.
#   sample  true  probabilities          predicted  right?
#   a       0     [0.80, 0.10, 0.10]     0          yes
#   b       0     [0.50, 0.30, 0.20]     0          yes
#   c       0     [0.20, 0.70, 0.10]     1          no, confidence 0.70
#   d       1     [0.25, 0.50, 0.25]     1          yes
#   e       1     [0.10, 0.30, 0.60]     2          no, confidence 0.60
#   f       1     [0.90, 0.04, 0.06]     0          no, confidence 0.90
# Class 2 has no true samples (support 0) but is predicted once.
PROBABILITIES = [
    [0.80, 0.10, 0.10],
    [0.50, 0.30, 0.20],
    [0.20, 0.70, 0.10],
    [0.25, 0.50, 0.25],
    [0.10, 0.30, 0.60],
    [0.90, 0.04, 0.06],
]
IDS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture
def logits():
    return torch.tensor(PROBABILITIES).log()


@pytest.fixture
def targets():
    return torch.tensor([0, 0, 0, 1, 1, 1])


def test_accuracy_counts_argmax_hits(logits, targets):
    assert accuracy(logits, targets) == pytest.approx(3 / 6)


def test_top_k_accuracy_by_hand(logits, targets):
    assert top_k_accuracy(logits, targets, k=1) == pytest.approx(3 / 6)
    # Top-2 misses only f (true 1, top two are 0 and 2).
    assert top_k_accuracy(logits, targets, k=2) == pytest.approx(5 / 6)


def test_top5_with_three_classes_clips_k_and_is_always_right(logits, targets):
    assert top_k_accuracy(logits, targets, k=5) == 1.0


def test_confusion_matrix_rows_are_true_columns_are_predicted(logits, targets):
    confusion = confusion_matrix(logits.argmax(dim=1), targets, num_classes=3)
    assert confusion.dtype == torch.int64
    assert confusion.tolist() == [
        [2, 1, 0],  # true 0: a, b right; c predicted 1
        [1, 1, 1],  # true 1: f predicted 0, d right, e predicted 2
        [0, 0, 0],  # no true class-2 samples
    ]


def test_confusion_matrix_refuses_out_of_range_classes():
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), num_classes=3)


def test_per_class_precision_recall_f1_with_a_zero_support_class(logits, targets):
    rows = per_class(confusion_matrix(logits.argmax(dim=1), targets, num_classes=3))
    # Class 0: 2 of 3 predictions right, 2 of 3 true found.
    assert rows[0]["precision"] == pytest.approx(2 / 3)
    assert rows[0]["recall"] == pytest.approx(2 / 3)
    assert rows[0]["f1"] == pytest.approx(2 / 3)
    assert rows[0]["support"] == 3
    # Class 1: 1 of 2 predictions right, 1 of 3 true found; F1 = 2·(1/2)(1/3)/(1/2+1/3) = 2/5.
    assert rows[1]["precision"] == pytest.approx(1 / 2)
    assert rows[1]["recall"] == pytest.approx(1 / 3)
    assert rows[1]["f1"] == pytest.approx(2 / 5)
    assert rows[1]["support"] == 3
    # Class 2: predicted once (wrongly), never true: recall undefined → 0, no NaN anywhere.
    assert rows[2] == {"class": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_class_of_an_all_zero_matrix_is_zeros_not_nan():
    rows = per_class(torch.zeros(2, 2, dtype=torch.int64))
    assert all(not math.isnan(v) for row in rows for v in row.values())


def test_misclassified_most_confidently_wrong_first(logits, targets):
    rows = misclassified(logits, targets, IDS)
    assert [r["id"] for r in rows] == ["f", "c", "e"]
    assert rows[0] == {
        "id": "f",
        "true": 1,
        "predicted": 0,
        "probabilities": [0.9, 0.04, 0.06],
        "confidence": 0.9,
    }
    assert [r["confidence"] for r in rows] == [0.9, 0.7, 0.6]


def test_misclassified_respects_limit(logits, targets):
    assert [r["id"] for r in misclassified(logits, targets, IDS, limit=2)] == ["f", "c"]


def test_misclassified_needs_one_id_per_sample(logits, targets):
    with pytest.raises(ValueError, match="5 ids for 6 samples"):
        misclassified(logits, targets, IDS[:5])


def test_evaluate_logits_collects_everything_as_json(logits, targets):
    evaluation = evaluate_logits(logits, targets, IDS, num_classes=3, loss=0.75)
    assert isinstance(evaluation, Evaluation)
    data = evaluation.to_dict()
    assert data["loss"] == 0.75
    assert data["accuracy"] == pytest.approx(0.5)
    assert data["top5"] == 1.0
    assert data["confusion"] == [[2, 1, 0], [1, 1, 1], [0, 0, 0]]
    assert [row["support"] for row in data["per_class"]] == [3, 3, 0]
    assert [row["id"] for row in data["misclassified"]] == ["f", "c", "e"]
    json.dumps(data)  # plain Python types only


def test_metrics_refuse_mismatched_shapes(logits):
    with pytest.raises(ValueError, match="targets must have shape"):
        accuracy(logits, torch.tensor([0, 1]))


def test_running_means_weights_batches_by_size():
    means = RunningMeans()
    # Batch 1: two samples, mean loss 1.0, both right. Batch 2: one sample, loss 4.0, wrong.
    means.update(torch.tensor(1.0), torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]))
    means.update(torch.tensor(4.0), torch.tensor([[2.0, 0.0]]), torch.tensor([1]))
    assert means.count == 3
    assert means.loss == pytest.approx((1.0 * 2 + 4.0 * 1) / 3)
    assert means.accuracy == pytest.approx(2 / 3)


def test_running_means_keeps_tensors_until_read():
    means = RunningMeans()
    loss = torch.tensor(0.5, requires_grad=True)
    means.update(loss * 2, torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert isinstance(means._loss_sum, torch.Tensor) and not means._loss_sum.requires_grad
    assert means.loss == pytest.approx(1.0)


def test_running_means_empty_is_zero():
    assert (RunningMeans().loss, RunningMeans().accuracy) == (0.0, 0.0)


def test_mean_std_uses_sample_std():
    mean, std = mean_std([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9)
    assert std == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / (3 - 1))


def test_mean_std_of_one_value_has_zero_std():
    assert mean_std([0.7]) == (0.7, 0.0)


def test_mean_std_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        mean_std([])
