"""The `task` → `kind` rename of datasets keeps every row's value (migration 0002)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("datasets", "0001_initial")]
AFTER = [("datasets", "0002_dataset_kind")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()  # what the previous migrate changed
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_renaming_task_to_kind_keeps_each_datasets_kind():
    old = _migrate(BEFORE)
    User = old.get_model("accounts", "User")
    Course = old.get_model("accounts", "Course")
    teacher = User.objects.create(username="mig-teacher", is_teacher=True)
    course = Course.objects.create(name="Migration", created_by=teacher)
    Dataset = old.get_model("datasets", "Dataset")
    digits = Dataset.objects.create(
        course=course, owner=teacher, name="digits", task="classification"
    )
    shapes = Dataset.objects.create(course=course, owner=teacher, name="shapes", task="detection")

    new = _migrate(AFTER)
    Dataset = new.get_model("datasets", "Dataset")
    assert Dataset.objects.get(pk=digits.pk).kind == "classification"
    assert Dataset.objects.get(pk=shapes.pk).kind == "detection"
    columns = {
        c.name
        for c in connection.introspection.get_table_description(
            connection.cursor(), "datasets_dataset"
        )
    }
    assert "kind" in columns and "task" not in columns
    assert Dataset._meta.get_field("kind").verbose_name == "kind"

    _migrate(BEFORE)  # and back: the rename is reversible
    Dataset = old.get_model("datasets", "Dataset")
    assert Dataset.objects.get(pk=shapes.pk).task == "detection"
    _migrate(AFTER)
