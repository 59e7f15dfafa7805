"""Stratified, seeded train/validation/test assignment and k-fold numbering (pure functions)."""

import random
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class SplitSettings:
    """The lecture's default: 8:2 training:validation; the test set is kept separately."""

    val: float = 0.2
    test: float = 0.0
    seed: int = 0
    folds: int = 0  # k for cross-validation; 0 or 1 means none

    def as_dict(self) -> dict:
        return {"val": self.val, "test": self.test, "seed": self.seed, "folds": self.folds}

    @classmethod
    def from_dict(cls, data: dict) -> "SplitSettings":
        return cls(
            val=float(data.get("val", 0.2)),
            test=float(data.get("test", 0.0)),
            seed=int(data.get("seed", 0)),
            folds=int(data.get("folds", 0)),
        )


def assign(
    items: list[tuple[int, object, str | None]], settings: SplitSettings
) -> dict[int, tuple[str, int]]:
    """Return {item_id: (split, fold)} for (item_id, stratum, fixed_split) triples.

    Items whose format fixed a split (e.g. MNIST's t10k files) keep it. The others are shuffled
    per stratum (their class) with a seed, so every class is split in the same proportions and
    the same settings always give the same split.
    """
    result: dict[int, tuple[str, int]] = {}
    strata: dict[object, list[int]] = defaultdict(list)
    for item_id, stratum, fixed in items:
        if fixed in ("train", "val", "test"):
            result[item_id] = (fixed, -1)
        else:
            strata[stratum].append(item_id)
    for stratum, ids in sorted(strata.items(), key=lambda kv: str(kv[0])):
        ids.sort()
        random.Random(f"{settings.seed}:{stratum}").shuffle(ids)  # noqa: S311 - not crypto
        n_test = round(len(ids) * settings.test)
        n_val = round(len(ids) * settings.val)
        for position, item_id in enumerate(ids):
            if position < n_test:
                result[item_id] = ("test", -1)
            elif position < n_test + n_val:
                result[item_id] = ("val", -1)
            else:
                result[item_id] = ("train", -1)
    if settings.folds > 1:
        _number_folds(items, result, settings)
    return result


def _number_folds(items, result, settings: SplitSettings) -> None:
    """Give every non-test item a fold 0..k-1, stratified like the split."""
    strata: dict[object, list[int]] = defaultdict(list)
    for item_id, stratum, _fixed in items:
        if result[item_id][0] != "test":
            strata[stratum].append(item_id)
    for stratum, ids in sorted(strata.items(), key=lambda kv: str(kv[0])):
        ids.sort()
        random.Random(f"folds:{settings.seed}:{stratum}").shuffle(ids)  # noqa: S311
        for position, item_id in enumerate(ids):
            result[item_id] = (result[item_id][0], position % settings.folds)
