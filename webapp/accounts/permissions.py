"""The one place that decides who may see or change what.

Students see their own work and what is shared with the class; teachers and TAs see
everything in their classes; nobody sees other classes. Site administrators see all.

What each role may do in its class (the class page shows the same table to its people):

| may ...                                                   | teacher | TA      | student |
|-----------------------------------------------------------|---------|---------|---------|
| see the class, its assignments, shared and handed-out data | yes     | yes     | yes     |
| see the roster, every student's datasets, runs and marks   | yes     | yes     | own     |
| see a hidden test set's images and who owns it (page, API) | yes     | yes     | no      |
| upload data, copy samples, train                           | yes     | yes     | yes     |
| hand out datasets, hold hidden test sets                   | yes     | yes     | no      |
| edit a dataset                                             | any     | own     | own     |
| cancel a run (a TA stops a runaway run in the lab)         | any     | any     | own     |
| move waiting runs in the queue                             | yes     | no      | no      |
| create and edit assignments                                | yes     | no      | no      |
| hand in a run to an assignment                             | no      | no      | yes     |
| people, roles, join code, limits, archive                  | yes     | no      | no      |
| reset a password (students the class made, see below)      | yes     | no      | no      |

An archived class is read-only for everyone: every write to its objects is refused with
`CourseArchived` (403, with the reason) by the action that would make it, whichever page or
API endpoint asked (`require_writable`); reads still work, and restoring makes it writable
again. Cancelling a run stays allowed: it stops GPU work, it adds nothing. The predicates
below say what a role allows; pages hide write buttons with `course_is_writable`.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext

from webapp.accounts.models import Course, Membership, Role, User

STAFF_ROLES = (Role.TEACHER, Role.TA)


class CourseArchived(PermissionDenied):
    """A write to an archived class: 403 on pages and in the API, with the reason."""

    def __init__(self) -> None:
        self.message = gettext("This class is archived: it is read-only. A teacher can restore it.")
        super().__init__(self.message)


def course_is_writable(course: Course) -> bool:
    """Whether the class's datasets, runs, assignments and people may change (not archived)."""
    return not course.is_archived


def require_writable(course: Course) -> None:
    """Raise CourseArchived unless the class may change; every action that writes calls it."""
    if not course_is_writable(course):
        raise CourseArchived


def role_in(user: User, course: Course) -> str | None:
    """Return the user's active role in the course, or None."""
    if not user.is_authenticated:
        return None
    cache = user.__dict__.setdefault("_manabi_roles", {})
    if course.pk not in cache:
        cache[course.pk] = (
            Membership.objects.active()
            .filter(course_id=course.pk, user_id=user.pk)
            .values_list("role", flat=True)
            .first()
        )
    return cache[course.pk]


def forget_roles(user: User) -> None:
    """Drop the per-request role cache after a membership change."""
    user.__dict__.pop("_manabi_roles", None)


def can_create_course(user: User) -> bool:
    return user.is_authenticated and (user.is_teacher or user.is_superuser)


def can_view_course(user: User, course: Course) -> bool:
    return user.is_authenticated and (user.is_superuser or role_in(user, course) is not None)


def can_view_roster(user: User, course: Course) -> bool:
    """Teachers and TAs see the roster and every student's work."""
    return user.is_authenticated and (user.is_superuser or role_in(user, course) in STAFF_ROLES)


def can_manage_course(user: User, course: Course) -> bool:
    """Teachers rename, archive, set limits, manage people and join codes."""
    return user.is_authenticated and (user.is_superuser or role_in(user, course) == Role.TEACHER)


def _taught_courses(user: User):
    """The ids of the classes the user teaches, as a subquery (every class for an administrator)."""
    if user.is_superuser:
        return Course.objects.values("pk")
    return Membership.objects.active().filter(user=user, role=Role.TEACHER).values("course_id")


def resettable_memberships(user: User, course: Course, memberships) -> set[int]:
    """Whose password `user` may reset from this class's roster: membership ids, in one query.

    Only a student of this class whose account a class this teacher teaches created (a roster
    import or a registration with its join code, `User.created_in_course`), and whose every
    active membership is as a student in a class this teacher teaches. So an account made
    elsewhere, a colleague (staff in any class) and anyone also in another teacher's class are
    never theirs to take over.
    """
    if not can_manage_course(user, course):
        return set()
    candidates = {
        m.user_id: m.pk
        for m in memberships
        if m.is_active
        and m.role == Role.STUDENT
        and m.course_id == course.pk
        and m.user_id != user.pk
    }
    if not candidates:
        return set()
    taught = _taught_courses(user)
    held_elsewhere = (
        Membership.objects.active()
        .filter(user_id=OuterRef("pk"))
        .filter(Q(role__in=STAFF_ROLES) | ~Q(course_id__in=taught))
    )
    allowed = (
        User.objects.filter(
            pk__in=list(candidates),
            created_in_course_id__in=taught,
            is_superuser=False,
            is_staff=False,
            is_teacher=False,
        )
        .exclude(Exists(held_elsewhere))
        .values_list("pk", flat=True)
    )
    return {candidates[pk] for pk in allowed}


def can_reset_password(user: User, course: Course, target: User) -> bool:
    """`resettable_memberships` for one person of the class."""
    membership = Membership.objects.filter(course_id=course.pk, user_id=target.pk).first()
    return membership is not None and membership.pk in resettable_memberships(
        user, course, [membership]
    )


def visible_courses(user: User) -> QuerySet[Course]:
    """Return the classes the user belongs to (all of them for a site administrator)."""
    if not user.is_authenticated:
        return Course.objects.none()
    if user.is_superuser:
        return Course.objects.all()
    return Course.objects.filter(
        memberships__user=user, memberships__removed_at__isnull=True
    ).distinct()


# --- datasets ----------------------------------------------------------------------------
# Visibility: private (owner + the class's teachers/TAs), shared with the class, handed out by
# a teacher, or a hidden test set (teachers/TAs only; students learn its size and classes).

STUDENT_VISIBLE = ("shared", "handout")


def can_view_dataset(user: User, dataset) -> bool:
    """May see the dataset's page and summary (name, size, classes)."""
    course = dataset.course
    if can_view_roster(user, course):
        return True
    if role_in(user, course) is None:
        return False
    return (
        dataset.owner_id == user.pk
        or dataset.visibility in STUDENT_VISIBLE
        or dataset.visibility == "hidden_test"  # the summary only: see can_view_images
    )


def can_view_images(user: User, dataset) -> bool:
    """May see and download the images and labels (never a student, for a hidden test set)."""
    if not can_view_dataset(user, dataset):
        return False
    if dataset.visibility == "hidden_test":
        return can_view_roster(user, dataset.course)
    return True


def can_see_dataset_owner(user: User, dataset) -> bool:
    """Who holds a dataset: shown wherever it is seen, except a hidden test set's to students
    (the page and the API alike)."""
    if dataset.visibility == "hidden_test":
        return can_view_roster(user, dataset.course)
    return can_view_dataset(user, dataset)


def can_edit_dataset(user: User, dataset) -> bool:
    """The owner (while in the class) and the class's teachers edit; each edit is a new version."""
    course = dataset.course
    if can_manage_course(user, course):
        return True
    if dataset.visibility == "hidden_test":
        return can_view_roster(user, course) and dataset.owner_id == user.pk
    return role_in(user, course) is not None and dataset.owner_id == user.pk


def can_create_dataset(user: User, course: Course, visibility: str = "private") -> bool:
    """Every member may upload; only teachers and TAs hand out data or hold hidden test sets."""
    if role_in(user, course) is None and not user.is_superuser:
        return False
    if visibility in ("handout", "hidden_test"):
        return can_view_roster(user, course)
    return True


def visible_datasets(user: User, course: Course):
    """The datasets of a class the user may see (hidden test sets included, as summaries)."""
    from webapp.datasets.models import Dataset  # accounts must not depend on datasets at import

    datasets = Dataset.objects.filter(course=course)
    if can_view_roster(user, course):
        return datasets
    if role_in(user, course) is None:
        return datasets.none()
    return datasets.filter(
        Q(owner=user) | Q(visibility__in=STUDENT_VISIBLE) | Q(visibility="hidden_test")
    )


# --- training jobs -------------------------------------------------------------------------


def can_view_job(user: User, job) -> bool:
    """A job is seen by its owner (while in the class) and the class's teachers and TAs."""
    if can_view_roster(user, job.course):
        return True
    return role_in(user, job.course) is not None and job.owner_id == user.pk


def can_view_group(user: User, group) -> bool:
    """A comparison group is seen by whoever may see its jobs: its owner and the class's staff."""
    return can_view_job(user, group)  # a group has the same course and owner_id as its jobs


def can_cancel_job(user: User, job) -> bool:
    return can_view_job(user, job)


def can_start_from(user: User, job) -> bool:
    """Transfer from an earlier run's weights: a run one may see (a student: their own, while in
    its class; staff: their classes' runs). Checked at submit and again when the job starts."""
    return can_view_job(user, job)


def can_train_on(user: User, dataset) -> bool:
    """Train on a dataset one may see whole; hidden test sets are for grading, never training."""
    if dataset.visibility == "hidden_test":
        return False
    return can_view_images(user, dataset) and (
        user.is_superuser or role_in(user, dataset.course) is not None
    )


def can_reorder_queue(user: User, course: Course) -> bool:
    """A class's teachers (not TAs) may move its waiting jobs up and down the line."""
    return can_manage_course(user, course)


# --- assignments and the class dashboard (teaching) --------------------------------------
# Every member sees a class's assignments; teachers create and edit them; teachers and TAs see
# every student's marks. Students submit their own runs and see only their own submissions;
# the hidden test set's images stay with the staff (see can_view_images).


def can_view_dashboard(user: User, course: Course) -> bool:
    """The class dashboard (every student's runs and marks) is for teachers and TAs."""
    return can_view_roster(user, course)


def can_view_assignment(user: User, assignment) -> bool:
    return can_view_course(user, assignment.course)


def can_manage_assignment(user: User, course: Course) -> bool:
    """Create and edit the class's assignments: its teachers."""
    return can_manage_course(user, course)


def can_view_marks(user: User, assignment) -> bool:
    """Every student's submissions and scores, and the CSV export: teachers and TAs."""
    return can_view_roster(user, assignment.course)


def can_submit_to(user: User, assignment) -> bool:
    """Students of the class hand in their own runs (the deadline is checked by the action)."""
    course = assignment.course
    return role_in(user, course) == Role.STUDENT


def can_view_submission(user: User, submission) -> bool:
    """A submission is seen by its student (while in the class) and the class's staff."""
    course = submission.assignment.course
    if can_view_roster(user, course):
        return True
    return role_in(user, course) is not None and submission.student_id == user.pk


def can_see_leaderboard_names(user: User, assignment) -> bool:
    """Staff always; students only when the teacher chose to show names to the class."""
    return can_view_marks(user, assignment) or (
        assignment.show_names and can_view_assignment(user, assignment)
    )
