"""`manage.py seed_demo`: the demo accounts and class. Safe to run again: it changes nothing."""

from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import Course, Membership, Role, User

DEMO_TEACHER = ("teacher", "manabi-teacher")
DEMO_STUDENT = ("student", "manabi-student")
DEMO_COURSE = "Demo class"
# Handed out in a new demo class: a new student opens one and presses Train. The detection
# sample is there so that a detector is as near as a classifier (issue 11).
DEMO_SAMPLES = ("digits", "shapes_detection")


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
        if not course.datasets.exists():
            from webapp.datasets.actions import copy_sample  # accounts must not import it early

            for key in DEMO_SAMPLES:
                copy_sample(teacher, course, key, visibility="handout")
        self.stdout.write(f"Demo class '{course.name}' (join code {course.join_code}) is ready.")


def _user(username: str, password: str, **fields) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:  # an existing demo account keeps whatever password its owner set
        user = User.objects.create_user(username=username, password=password, **fields)
    return user
