"""Job specs stored with the old key `task` are rewritten to `kind` (jobs migration 0004)."""

import pytest

from tests.migrations import latest, migrate

BEFORE = [("jobs", "0003_artifact_bytes")]
AFTER = [("jobs", "0004_spec_task_to_kind")]


def _migrate(targets):
    return migrate("jobs", targets)


@pytest.mark.django_db(transaction=True)
def test_stored_specs_saying_task_say_kind_after_the_migration():
    old = _migrate(BEFORE)
    User = old.get_model("accounts", "User")
    Course = old.get_model("accounts", "Course")
    Dataset = old.get_model("datasets", "Dataset")
    Job = old.get_model("jobs", "Job")
    teacher = User.objects.create(username="mig-spec", is_teacher=True)
    course = Course.objects.create(name="Specs", created_by=teacher)
    dataset = Dataset.objects.create(course=course, owner=teacher, name="d", kind="detection")

    def job(spec):
        return Job.objects.create(
            course=course, owner=teacher, dataset=dataset, dataset_version=1, spec=spec
        ).pk

    old_key = job({"task": "detection", "epochs": 3, "transfer": {"mode": "scratch"}})
    both = job({"task": "classification", "kind": "detection"})
    new_key = job({"kind": "detection", "epochs": 2})
    empty = job({"task": None})

    new = _migrate(AFTER)
    Job = new.get_model("jobs", "Job")
    spec = {pk: s for pk, s in Job.objects.values_list("pk", "spec")}
    assert spec[old_key] == {"kind": "detection", "epochs": 3, "transfer": {"mode": "scratch"}}
    assert spec[both] == {"kind": "detection"}
    assert spec[new_key] == {"kind": "detection", "epochs": 2}
    assert spec[empty] == {"kind": "classification"}
    assert not Job.objects.filter(spec__has_key="task").exists()

    _migrate(BEFORE)  # reversible (a no-op: `kind` is read everywhere)
    _migrate(latest("jobs"))
