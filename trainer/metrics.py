"""Classification metrics: pure functions on logits (N, C) and integer targets (N,)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from trainer.evaluation import RowsApart


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}"
        )


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose highest logit is the true class (0.0 for no samples)."""
    _check(logits, targets)
    if targets.numel() == 0:
        return 0.0
    return (logits.argmax(dim=1) == targets).float().mean().item()


def top_k_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> float:
    """Fraction of samples whose true class is among the k highest logits; k is clipped to C."""
    _check(logits, targets)
    if targets.numel() == 0:
        return 0.0
    k = max(1, min(k, logits.shape[1]))
    top = logits.topk(k, dim=1).indices  # (N, k)
    return (top == targets.unsqueeze(1)).any(dim=1).float().mean().item()


def confusion_matrix(
    predicted: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    predicted, targets = predicted.reshape(-1).long(), targets.reshape(-1).long()
    if predicted.shape != targets.shape:
        raise ValueError(f"{predicted.numel()} predictions for {targets.numel()} targets")
    if targets.numel() and (
        min(predicted.min().item(), targets.min().item()) < 0
        or max(predicted.max().item(), targets.max().item()) >= num_classes
    ):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}")
    cells = targets * num_classes + predicted  # (N,) flat index of (true, predicted)
    counts = torch.bincount(cells, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu()


def per_class(confusion: torch.Tensor) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class; 0.0 wherever a ratio is undefined."""
    confusion = confusion.double()
    hits = confusion.diagonal()  # (C,)
    predicted = confusion.sum(dim=0)  # (C,) column sums
    support = confusion.sum(dim=1)  # (C,) row sums
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, hits / support.clamp(min=1), 0.0)
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), 0.0)
    return [
        {"class": i, "precision": p, "recall": r, "f1": f, "support": int(s)}
        for i, (p, r, f, s) in enumerate(
            zip(precision.tolist(), recall.tolist(), f1.tolist(), support.tolist(), strict=True)
        )
    ]


def misclassified(
    logits: torch.Tensor, targets: torch.Tensor, ids: Sequence[Any], *, limit: int = 200
) -> list[dict[str, Any]]:
    """The wrongly predicted samples, most confidently wrong first, at most `limit` of them."""
    _check(logits, targets)
    if len(ids) != targets.shape[0]:
        raise ValueError(f"{len(ids)} ids for {targets.shape[0]} samples")
    probabilities = logits.detach().float().softmax(dim=1).cpu()  # (N, C)
    confidence, predicted = probabilities.max(dim=1)  # (N,), (N,)
    targets = targets.cpu()
    wrong = (predicted != targets).nonzero().flatten()  # (W,)
    # Stable sort so that equally confident mistakes keep the dataset's order.
    order = confidence[wrong].argsort(descending=True, stable=True)[:limit]
    rows = []
    for index in wrong[order].tolist():
        rows.append(
            {
                "id": ids[index],
                "true": int(targets[index]),
                "predicted": int(predicted[index]),
                "probabilities": [round(p, 4) for p in probabilities[index].tolist()],
                "confidence": round(confidence[index].item(), 4),
            }
        )
    return rows


def predictions(
    logits: torch.Tensor, targets: torch.Tensor, ids: Sequence[Any]
) -> list[dict[str, Any]]:
    """Every sample's id, true and predicted class and confidence, in the split's order."""
    _check(logits, targets)
    if len(ids) != targets.shape[0]:
        raise ValueError(f"{len(ids)} ids for {targets.shape[0]} samples")
    confidence, predicted = logits.detach().float().softmax(dim=1).cpu().max(dim=1)  # (N,), (N,)
    return [
        {"id": ids[i], "true": t, "predicted": p, "confidence": round(c, 4)}
        for i, (t, p, c) in enumerate(
            zip(targets.cpu().tolist(), predicted.tolist(), confidence.tolist(), strict=True)
        )
    ]


@dataclass
class Evaluation(RowsApart):
    """Everything a results page shows about one evaluated split."""

    loss: float
    accuracy: float
    top5: float
    confusion: list[list[int]] = field(default_factory=list)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    # One row per sample (see `predictions`): written to its own file, not into the result.
    predictions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def figures(self) -> dict[str, float]:
        """What an epoch event shows of it (as val_loss, val_acc)."""
        return {"loss": self.loss, "acc": self.accuracy}


def evaluate_logits(
    logits: torch.Tensor,
    targets: torch.Tensor,
    ids: Sequence[Any],
    *,
    num_classes: int,
    loss: float,
) -> Evaluation:
    """All metrics of one split from its stacked logits (N, C) and targets (N,)."""
    logits, targets = logits.detach().float().cpu(), targets.detach().long().cpu()
    _check(logits, targets)
    confusion = confusion_matrix(logits.argmax(dim=1), targets, num_classes)
    return Evaluation(
        loss=float(loss),
        accuracy=accuracy(logits, targets),
        top5=top_k_accuracy(logits, targets, k=5),
        confusion=confusion.tolist(),
        per_class=per_class(confusion),
        misclassified=misclassified(logits, targets, ids),
        predictions=predictions(logits, targets, ids),
    )


class RunningMeans:
    """Mean loss and accuracy over an epoch's batches, with one device sync at the end.

    `update` keeps running sums as tensors on the batch's device, so the training loop never
    waits for the GPU; reading `.loss` or `.accuracy` syncs once.
    """

    def __init__(self) -> None:
        self.count = 0
        self._loss_sum: torch.Tensor | float = 0.0
        self._correct: torch.Tensor | int = 0
        self._settled: tuple[float, float] | None = None

    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch: `loss` is the batch's mean loss, logits (B, C), targets (B,)."""
        batch = targets.shape[0]  # a shape, not a value: no sync
        self._loss_sum = self._loss_sum + loss.detach().float() * batch
        self._correct = self._correct + (logits.detach().argmax(dim=1) == targets).sum()
        self.count += batch
        self._settled = None

    def _values(self) -> tuple[float, float]:
        if self._settled is None:
            if self.count == 0:
                self._settled = (0.0, 0.0)
            else:
                loss_sum, correct = torch.as_tensor(self._loss_sum), torch.as_tensor(self._correct)
                sums = torch.stack([loss_sum.double(), correct.double().to(loss_sum.device)])
                total_loss, total_correct = sums.tolist()  # the one sync
                self._settled = (total_loss / self.count, total_correct / self.count)
        return self._settled

    @property
    def loss(self) -> float:
        """Sample-weighted mean loss so far."""
        return self._values()[0]

    @property
    def accuracy(self) -> float:
        """Fraction of samples predicted correctly so far."""
        return self._values()[1]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and *sample* standard deviation (divides by n - 1) of k-fold results; 0 for n=1."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std
