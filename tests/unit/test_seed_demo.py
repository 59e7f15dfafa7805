"""`manage.py seed_demo` hands out one sample of each kind, and a demo class made before a
sample joined the list gets it on the next run (once: running again adds nothing)."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from webapp.accounts.management.commands import seed_demo
from webapp.accounts.models import Course, User
from webapp.datasets import actions
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def _demo() -> Course:
    return Course.objects.get(name=seed_demo.DEMO_COURSE)


def _handed_out(course: Course) -> dict[str, str]:
    teacher = User.objects.get(username="teacher")
    rows = Dataset.objects.filter(course=course, owner=teacher, visibility="handout")
    return dict(rows.values_list("source", "kind"))


def test_a_new_demo_class_gets_a_sample_of_every_kind():
    call_command("seed_demo")
    assert _handed_out(_demo()) == {
        "sample:digits": "classification",
        "sample:shapes_detection": "detection",
        "sample:shapes_segmentation": "segmentation",
        "sample:keypoints": "keypoints",
    }


def test_an_older_demo_class_gets_the_new_samples_once(monkeypatch):
    monkeypatch.setattr(seed_demo, "DEMO_SAMPLES", ("digits", "shapes_detection"))
    call_command("seed_demo")  # the demo class as issue 11 made it
    course = _demo()
    digits = course.datasets.get(source="sample:digits")
    digits.name = "Renamed by the teacher"  # a renamed copy is still the sample's copy
    digits.save()
    # A student's own copy of a sample is not the class's handout.
    student = User.objects.get(username="student")
    actions.copy_sample(student, course, "keypoints")
    monkeypatch.undo()

    call_command("seed_demo")
    assert set(_handed_out(course)) == {
        "sample:digits",
        "sample:shapes_detection",
        "sample:shapes_segmentation",
        "sample:keypoints",
    }
    call_command("seed_demo")  # again: nothing more
    assert course.datasets.count() == 5  # four handed out, the student's own copy
    assert course.datasets.filter(source="sample:digits").get().name == "Renamed by the teacher"


def test_an_archived_demo_class_is_left_as_it_is_and_the_command_says_why(monkeypatch):
    monkeypatch.setattr(seed_demo, "DEMO_SAMPLES", ("digits",))
    call_command("seed_demo")
    course = _demo()
    course.archived_at = timezone.now()
    course.save()
    monkeypatch.undo()

    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=out, stderr=err)
    assert list(_handed_out(course)) == ["sample:digits"]
    assert "'shapes_segmentation'" in err.getvalue() and "archived" in err.getvalue()
    assert "is ready" in out.getvalue()
