"""`manage.py seed_demo`: the demo accounts and class. Safe to run again: it creates only what is
missing (a demo class made before a sample joined DEMO_SAMPLES gets that sample then)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import Course, Membership, Role, User

DEMO_TEACHER = ("teacher", "manabi-teacher")
DEMO_STUDENT = ("student", "manabi-student")
DEMO_COURSE = "Demo class"
# Handed out in the demo class: a new student opens one and presses Train. One sample per kind,
# so that a detector (issue 11), a segmenter and a pose network (issue 12) are as near as a
# classifier.
DEMO_SAMPLES = ("digits", "shapes_detection", "shapes_segmentation", "keypoints")


class Command(BaseCommand):
    help = "Create the demo teacher, student and class if they do not exist yet."

    @transaction.atomic
    def handle(self, *args, **options):
        teacher = _user(*DEMO_TEACHER, is_teacher=True, display_name="Demo Teacher")
        student = _user(*DEMO_STUDENT, is_teacher=False, display_name="Demo Student")
        course = Course.objects.filter(name=DEMO_COURSE, created_by=teacher).first()
        if course is None:
            course = Course.objects.create(name=DEMO_COURSE, created_by=teacher)
        Membership.objects.get_or_create(
            course=course, user=teacher, defaults={"role": Role.TEACHER}
        )
        Membership.objects.get_or_create(
            course=course, user=student, defaults={"role": Role.STUDENT}
        )
        if student.created_in_course_id is None and student.memberships.count() == 1:
            # The demo class made the demo student, so its teacher may reset that password.
            student.created_in_course = course
            student.save(update_fields=["created_in_course"])
        for problem in _hand_out_samples(teacher, course):
            self.stderr.write(problem)
        self.stdout.write(f"Demo class '{course.name}' (join code {course.join_code}) is ready.")


def _hand_out_samples(teacher: User, course: Course) -> list[str]:
    """Copy each demo sample the class has no copy of (by its source, whoever renamed it);
    returns why a sample could not be copied (an archived class, a full quota), if one could
    not: the run command goes on without it."""
    from webapp.accounts.permissions import CourseArchived
    from webapp.datasets.actions import copy_sample  # accounts must not import it early
    from webapp.errors import Refused

    present = set(course.datasets.filter(owner=teacher).values_list("source", flat=True))
    problems = []
    for key in DEMO_SAMPLES:
        if f"sample:{key}" in present:
            continue
        try:
            with transaction.atomic():
                copy_sample(teacher, course, key, visibility="handout")
        except (Refused, CourseArchived) as exc:
            problems.append(f"The demo class gets no copy of the sample {key!r}: {exc.message}")
    return problems


def _user(username: str, password: str, **fields) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:  # an existing demo account keeps whatever password its owner set
        user = User.objects.create_user(username=username, password=password, **fields)
    return user
