"""Classification runs with figures only in their result get them in Job.metrics (jobs
migration 0005_backfill_metrics), so the job page, compare page and API read metrics alone."""

import pytest

from tests.migrations import latest, migrate

BEFORE = [("jobs", "0004_spec_task_to_kind")]
AFTER = [("jobs", "0005_backfill_metrics")]


def _migrate(targets):
    return migrate("jobs", targets)


@pytest.mark.django_db(transaction=True)
def test_old_classification_runs_get_their_figures_from_the_result():
    old = _migrate(BEFORE)
    User = old.get_model("accounts", "User")
    Course = old.get_model("accounts", "Course")
    Dataset = old.get_model("datasets", "Dataset")
    Job = old.get_model("jobs", "Job")
    teacher = User.objects.create(username="mig-metrics", is_teacher=True)
    course = Course.objects.create(name="Metrics", created_by=teacher)
    digits = Dataset.objects.create(course=course, owner=teacher, name="d", kind="classification")
    shapes = Dataset.objects.create(course=course, owner=teacher, name="s", kind="detection")

    def job(dataset, result, metrics=None, spec=None):
        return Job.objects.create(
            course=course,
            owner=teacher,
            dataset=dataset,
            dataset_version=1,
            spec=spec or {},
            status="succeeded",
            result=result,
            metrics=metrics or {},
        ).pk

    split = {"test": {"accuracy": 0.9, "loss": 0.3}, "val": {"accuracy": 0.8, "loss": 0.5}}
    oldest = job(digits, split, metrics={"val_acc": 0.7, "epoch": 3})
    no_test = job(digits, {"test": None, "val": {"accuracy": 0.6, "loss": None}})
    folds = job(digits, {"folds": [0.5, 0.7], "mean_accuracy": 0.6, "std_accuracy": 0.1})
    kept = job(digits, split, metrics={"test_accuracy": 0.95})  # the job task's wins
    detector = job(shapes, {"test": {"map50": 0.5, "map": 0.3}}, spec={"kind": "detection"})
    failed = job(digits, {})

    new = _migrate(AFTER)
    metrics = dict(new.get_model("jobs", "Job").objects.values_list("pk", "metrics"))
    assert metrics[oldest] == {
        "val_acc": 0.7,
        "epoch": 3,
        "test_accuracy": 0.9,
        "test_loss": 0.3,
        "val_accuracy": 0.8,
        "val_loss": 0.5,
    }
    assert metrics[no_test] == {"val_accuracy": 0.6}  # no loss known: none kept, as the task
    assert metrics[folds] == {"kfold_mean": 0.6, "kfold_std": 0.1}
    assert metrics[kept]["test_accuracy"] == 0.95 and metrics[kept]["val_accuracy"] == 0.8
    assert metrics[detector] == {} and metrics[failed] == {}

    _migrate(BEFORE)  # reversible (a no-op: the figures are read everywhere)
    _migrate(latest("jobs"))
