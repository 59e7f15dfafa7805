"""Digits on disk with a manifest: the trainer's tests need no Django and no download."""

import numpy as np
import pytest
from PIL import Image


def _write_digits(folder, count=None):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).astype(np.uint8)  # (N, 8, 8)
    labels = digits.target
    if count:
        images, labels = images[:count], labels[:count]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    items = []
    for rank, i in enumerate(order):
        path = folder / f"{i:04d}.png"
        Image.fromarray(images[i], "L").save(path)
        # Stratification is not needed for a test at this size: 70/10/20 by position.
        split = "train" if rank < 0.7 * len(order) else "val" if rank < 0.8 * len(order) else "test"
        items.append({"path": path.name, "label": int(labels[i]), "split": split, "id": int(i)})
    return {"classes": [str(d) for d in range(10)], "items": items, "root": str(folder)}


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory):
    """All 1,797 of scikit-learn's digits as PNG files, split 70/10/20."""
    return _write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def small_digits(tmp_path_factory):
    """The first 300 digits: for tests of the machinery, not of accuracy."""
    return _write_digits(tmp_path_factory.mktemp("digits300"), 300)
