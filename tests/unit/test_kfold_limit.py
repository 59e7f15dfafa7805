"""The k-fold maximum is trainer.limits.MAX_KFOLD everywhere: the Train page's check and its
script's text, a dataset's re-split, the dataset API's schema and the trainer's spec."""

import pytest

from trainer import limits
from trainer.spec import SpecError, load_spec
from webapp.api import dataset_schemas
from webapp.datasets import actions, splits
from webapp.jobs import launch, launch_form


@pytest.fixture
def five_folds_at_most(monkeypatch):
    monkeypatch.setattr(limits, "MAX_KFOLD", 5)


def test_the_train_pages_kfold_text_names_the_limit(five_folds_at_most):
    assert launch_form.kfold_message().endswith("from 2 to 5.")
    assert launch._js_text()["kfold"] == launch_form.kfold_message()


def test_a_resplit_beyond_the_limit_is_refused_naming_folds(five_folds_at_most):
    with pytest.raises(actions.DatasetError) as refused:
        actions.resplit(None, None, splits.SplitSettings(0.2, 0.0, 0, 6))  # checked first
    assert refused.value.field == "folds"
    assert "2 to 5 folds" in refused.value.message


def test_the_spec_names_the_limit_in_its_message(five_folds_at_most):
    data = {"classes": ["a", "b"], "items": [{"path": "a.png", "label": 0}]}
    with pytest.raises(SpecError) as refused:
        load_spec({"data": data, "kfold": 1}, check_registry=False)
    assert refused.value.errors["kfold"].endswith("between 2 and 5")


def test_the_bounds_in_the_schemas_are_the_limit():
    resplit = [
        model
        for model in vars(dataset_schemas).values()
        if isinstance(model, type) and "folds" in getattr(model, "model_fields", {})
    ]
    assert resplit
    for model in resplit:
        assert model.model_json_schema()["properties"]["folds"]["maximum"] == limits.MAX_KFOLD
