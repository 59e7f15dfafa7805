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
    _migrate_to_the_latest()


def _migrate_to_the_latest():
    """Every app at its last migration again (going back also unapplied later ones)."""
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())


STABLE_BEFORE = [("datasets", "0002_dataset_kind")]
STABLE_AFTER = [("datasets", "0003_stable_uids_and_drafts")]


@pytest.mark.django_db(transaction=True)
def test_existing_items_and_annotations_get_uids_shared_by_their_version_copies():
    old = _migrate(STABLE_BEFORE)
    User = old.get_model("accounts", "User")
    Course = old.get_model("accounts", "Course")
    teacher = User.objects.create(username="mig-uids", is_teacher=True)
    course = Course.objects.create(name="Uids", created_by=teacher)
    Dataset = old.get_model("datasets", "Dataset")
    StoredImage = old.get_model("datasets", "StoredImage")
    Item = old.get_model("datasets", "Item")
    Annotation = old.get_model("datasets", "Annotation")
    dataset = Dataset.objects.create(course=course, owner=teacher, name="d", kind="detection")
    image = StoredImage.objects.create(
        sha256="a" * 64,
        file="f",
        thumb="t",
        content_type="image/png",
        width=9,
        height=9,
        channels=3,
        bytes=1,
        phash="0" * 16,
    )
    rows = {}
    for version, path in ((1, "a.png"), (2, "a.png"), (1, "b.png")):  # a.png copied at v2
        item = Item.objects.create(
            dataset=dataset,
            image=image,
            original_path=path,
            valid_from=version,
            valid_to=2 if (version, path) == (1, "a.png") else None,
        )
        box = Annotation.objects.create(item=item, category_index=0, bbox=[1, 1, 2, 2])
        twin = Annotation.objects.create(item=item, category_index=0, bbox=[1, 1, 2, 2])
        rows[(version, path)] = (item.pk, box.pk, twin.pk)

    new = _migrate(STABLE_AFTER)
    Item = new.get_model("datasets", "Item")
    Annotation = new.get_model("datasets", "Annotation")
    uid = {pk: u for pk, u in Item.objects.values_list("pk", "uid")}
    a1, a2, b1 = rows[(1, "a.png")], rows[(2, "a.png")], rows[(1, "b.png")]
    assert uid[a1[0]] == uid[a2[0]] != uid[b1[0]]
    ann = {pk: u for pk, u in Annotation.objects.values_list("pk", "uid")}
    assert ann[a1[1]] != ann[a1[2]]  # two identical boxes in one image stay two
    assert ann[a1[1]] == ann[a2[1]]  # a copy in the next version is the same annotation
    assert len({ann[pk] for pk in b1[1:]}) == 2 and not {ann[b1[1]]} & {ann[a1[1]], ann[a1[2]]}
    assert set(Annotation.objects.values_list("revision", flat=True)) == {1}
    _migrate_to_the_latest()
