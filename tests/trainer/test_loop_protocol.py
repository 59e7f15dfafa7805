"""Every kind's loop module has what trainer/loops/__init__.py's protocol lists, and the
torch-free budget asks a kind what it is instead of comparing its name."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from trainer import kinds, loops

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> list[str]:
    """The functions and constants the protocol docstring names, e.g. `predict(` or `KIND`."""
    doc = loops.__doc__ or ""
    names = re.findall(r"^\s{4}\(?([A-Za-z_]+)(?:\(|\s)", doc, flags=re.MULTILINE)
    return [name for name in names if name not in {"and"}]


def test_the_protocol_names_predict_and_score():
    listed = _listed()
    assert {"predict", "score", "prepare", "evaluate", "export", "KIND"} <= set(listed), listed


@pytest.mark.parametrize("kind", kinds.trainable())
def test_each_loop_module_has_everything_the_protocol_lists(kind):
    module = importlib.import_module(f"trainer.loops.{kind}")
    optional = {"folds"}  # where the kind offers k folds (with FOLD_FIGURE)
    missing = [n for n in _listed() if n not in optional and not hasattr(module, n)]
    assert missing == [], missing


def test_the_budget_compares_no_kind_by_name():
    tree = ast.parse((ROOT / "trainer" / "budget.py").read_text(encoding="utf-8"))
    compared = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(
            isinstance(side, ast.Constant) and side.value in kinds.KINDS
            for side in (node.left, *node.comparators)
        )
    ]
    assert compared == []  # ask trainer.kinds.shape(kind) instead
