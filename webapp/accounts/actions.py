"""Every change to people and classes: write the database, commit, then broadcast."""

import csv
import io
import secrets
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webapp.accounts.models import (
    ApiToken,
    Course,
    Membership,
    Role,
    User,
    hash_token,
    new_join_code,
    normalize_join_code,
)
from webapp.accounts.permissions import forget_roles, require_writable
from webapp.errors import Refused

MAX_ROSTER_ROWS = 2000


class AccountsError(Refused):
    """A refused change to people or classes."""


class JoinCodeInvalid(AccountsError):
    status = 404


class AlreadyMember(AccountsError):
    status = 409


class NameTaken(AccountsError):
    status = 409


class LastTeacher(AccountsError):
    status = 409


def course_group(course_id: int) -> str:
    """Channel group every member of a class listens to."""
    return f"course-{course_id}"


def course_staff_group(course_id: int) -> str:
    """Channel group only the class's teachers and TAs listen to."""
    return f"course-{course_id}-staff"


def user_group(user_id: int) -> str:
    """Channel group of every socket one person has open (class and job pages alike)."""
    return f"user-{user_id}"


def _access_changed(course: Course, user: User) -> None:
    """After the commit, the person's open sockets check again what they may still hold.

    Access is decided when a socket opens; this is how a socket opened as a TA, or as a member,
    stops hearing what its holder may no longer see (the consumers close it with 4403).
    """
    message = {"type": "access.changed", "course": course.pk}

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(user_group(user.pk), message)

    # robust: with the broker away the sockets are gone too, and the change itself is saved.
    transaction.on_commit(send, robust=True)


def _broadcast(group: str, event: dict) -> None:
    """Send an event to a channel group once the surrounding transaction has committed."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": "course.event", "event": event})

    transaction.on_commit(send)


def _roster_changed(course: Course, change: str, user: User) -> None:
    _broadcast(
        course_staff_group(course.pk),
        {"kind": "roster.changed", "change": change, "user": user.username},
    )


def _course_changed(course: Course) -> None:
    _broadcast(course_group(course.pk), {"kind": "course.changed", "name": course.name})


@transaction.atomic
def create_course(teacher: User, name: str) -> Course:
    """Create a class with the teacher as its first member."""
    name = name.strip()
    if not name:
        raise AccountsError(_("Give the class a name."), field="name")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                course = Course.objects.create(name=name, created_by=teacher)
            break
        except IntegrityError:  # join code collision: draw again
            continue
    else:  # pragma: no cover - 31^8 codes make this practically impossible
        raise AccountsError(_("Could not draw a free join code; try again."))
    Membership.objects.create(course=course, user=teacher, role=Role.TEACHER)
    forget_roles(teacher)
    return course


def _course_for_code(join_code: str) -> Course:
    code = normalize_join_code(join_code or "")
    # A code with a control character or a lone surrogate (a NUL, which PostgreSQL refuses in
    # text) is no class's code, and needs no query.
    known = bool(code) and code.isprintable()
    course = Course.objects.filter(join_code=code).first() if known else None
    if course is None or not course.join_open:
        raise JoinCodeInvalid(
            _("No open class has this join code. Check the code with your teacher."),
            field="join_code",
        )
    require_writable(course)  # the code is right: say why this class takes nobody now
    return course


@transaction.atomic
def join_course(user: User, join_code: str) -> Membership:
    """Add the user to the class with this join code as a student."""
    course = _course_for_code(join_code)
    membership = Membership.objects.select_for_update().filter(course=course, user=user).first()
    if membership and membership.is_active:
        raise AlreadyMember(_("You are already in this class."), field="join_code")
    if membership:  # removed earlier: come back as a student, with the old work still there
        membership.removed_at = None
        membership.role = Role.STUDENT
        membership.joined_at = timezone.now()
        membership.save()
    else:
        membership = Membership.objects.create(course=course, user=user, role=Role.STUDENT)
    forget_roles(user)
    _roster_changed(course, "joined", user)
    return membership


def _validate_new_user(username: str, password: str, field_prefix: str = "") -> None:
    username_field = User._meta.get_field("username")
    try:
        username_field.run_validators(username)
    except ValidationError as exc:
        raise AccountsError(" ".join(exc.messages), field=f"{field_prefix}username") from None
    if not username:
        raise AccountsError(_("Choose a user name."), field=f"{field_prefix}username")
    if User.objects.filter(username__iexact=username).exists():
        raise NameTaken(_("This user name is taken."), field=f"{field_prefix}username")
    try:
        validate_password(password, User(username=username))
    except ValidationError as exc:
        raise AccountsError(" ".join(exc.messages), field=f"{field_prefix}password") from None


@transaction.atomic
def register_student(username: str, password: str, join_code: str) -> User:
    """Create a student account and put it in the class with this join code."""
    username = (username or "").strip()
    course = _course_for_code(join_code)
    _validate_new_user(username, password or "")
    user = User.objects.create_user(username=username, password=password, created_in_course=course)
    Membership.objects.create(course=course, user=user, role=Role.STUDENT)
    _roster_changed(course, "joined", user)
    return user


def regenerate_join_code(course: Course) -> str:
    """Replace the join code (the old one stops working) and open joining."""
    require_writable(course)
    for _attempt in range(5):
        course.join_code = new_join_code()
        course.join_open = True
        try:
            with transaction.atomic():
                course.save(update_fields=["join_code", "join_open"])
            return course.join_code
        except IntegrityError:
            continue
    raise AccountsError(_("Could not draw a free join code; try again."))  # pragma: no cover


def set_join_open(course: Course, is_open: bool) -> None:
    require_writable(course)
    course.join_open = is_open
    course.save(update_fields=["join_open"])


@transaction.atomic
def rename_course(course: Course, name: str) -> None:
    require_writable(course)
    name = (name or "").strip()
    if not name:
        raise AccountsError(_("Give the class a name."), field="name")
    course.name = name
    course.save(update_fields=["name"])
    _course_changed(course)


@transaction.atomic
def set_archived(course: Course, archived: bool) -> None:
    """Archive (read-only, joining closed) or restore a class. Nothing is deleted."""
    course.archived_at = timezone.now() if archived else None
    course.save(update_fields=["archived_at"])
    _course_changed(course)


LIMIT_FIELDS = ("gpu_minutes_per_student", "concurrent_jobs_per_student", "storage_mb_per_student")
LIMIT_MAX = {
    "gpu_minutes_per_student": 100_000,
    "concurrent_jobs_per_student": 50,
    "storage_mb_per_student": 1_000_000,
}


def update_limits(course: Course, **limits: int) -> None:
    """Set the per-student limits that jobs and uploads enforce."""
    require_writable(course)
    for field, value in limits.items():
        if field not in LIMIT_FIELDS:
            raise AccountsError(_("Unknown limit."), field=field)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= LIMIT_MAX[field]
        ):
            raise AccountsError(
                _("Enter a whole number from 0 to %(max)s.") % {"max": LIMIT_MAX[field]},
                field=field,
            )
        setattr(course, field, value)
    course.save(update_fields=list(limits))


def _other_teachers(course: Course, membership: Membership) -> bool:
    return (
        Membership.objects.active()
        .filter(course=course, role=Role.TEACHER)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def remove_member(course: Course, membership: Membership) -> None:
    """Take someone out of a class. Their datasets, jobs and models are kept."""
    require_writable(course)
    if membership.role == Role.TEACHER and not _other_teachers(course, membership):
        raise LastTeacher(_("A class needs at least one teacher."))
    membership.removed_at = timezone.now()
    membership.save(update_fields=["removed_at"])
    forget_roles(membership.user)
    _access_changed(course, membership.user)  # first: their sockets close before news is sent
    _roster_changed(course, "removed", membership.user)


@transaction.atomic
def change_role(course: Course, membership: Membership, role: str) -> None:
    require_writable(course)
    if role not in Role.values:
        raise AccountsError(_("Unknown role."), field="role")
    demoting = membership.role == Role.TEACHER and role != Role.TEACHER
    if demoting and not _other_teachers(course, membership):
        raise LastTeacher(_("A class needs at least one teacher."))
    membership.role = role
    membership.save(update_fields=["role"])
    forget_roles(membership.user)
    _access_changed(course, membership.user)  # first: their sockets close before news is sent
    _roster_changed(course, "role", membership.user)


def new_password() -> str:
    """Return a password a student can type from a printed sheet."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def reset_password(target: User) -> str:
    """Give the user a new random password and return it (shown once to the teacher)."""
    password = new_password()
    target.set_password(password)
    target.save(update_fields=["password"])
    ApiToken.objects.filter(user=target, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return password


@dataclass
class RosterRow:
    line: int
    username: str
    display_name: str = ""
    password: str = ""
    status: str = ""  # "created", "added", "already" or "" when refused
    error: str = ""


def bulk_create_students(course: Course, csv_text: str) -> list[RosterRow]:
    """Create students from a CSV roster (username[,display_name[,password]]) and add them.

    Good rows are kept when others are refused; each refused row says its line and why.
    New accounts without a password in the file get a generated one, returned once. A file
    never enrols, changes or gains power over an account this class did not create: such a
    row is refused, and that person joins with the code themselves.
    """
    require_writable(course)
    reader = csv.reader(io.StringIO(csv_text.lstrip("\ufeff")))
    rows: list[RosterRow] = []
    seen: set[str] = set()
    for line, record in enumerate(reader, start=1):
        cells = [cell.strip() for cell in record]
        if not any(cells):
            continue
        if line == 1 and cells[0].lower() in {"username", "user", "ユーザー名"}:
            continue  # header
        if len(rows) >= MAX_ROSTER_ROWS:
            rows.append(RosterRow(line, cells[0], error=_("Too many rows; split the file.")))
            break
        row = RosterRow(
            line,
            cells[0],
            display_name=cells[1] if len(cells) > 1 else "",
            password=cells[2] if len(cells) > 2 else "",
        )
        rows.append(row)
        if row.username.lower() in seen:
            row.error = _("This user name appears twice in the file.")
            continue
        seen.add(row.username.lower())
        _apply_roster_row(course, row)
    return rows


def _apply_roster_row(course: Course, row: RosterRow) -> None:
    existing = User.objects.filter(username__iexact=row.username).first()
    try:
        with transaction.atomic():
            if existing is None:
                row.password = row.password or new_password()
                _validate_new_user(row.username, row.password)
                user = User.objects.create_user(
                    username=row.username,
                    password=row.password,
                    display_name=row.display_name,
                    created_in_course=course,
                )
                Membership.objects.create(course=course, user=user, role=Role.STUDENT)
                row.status = "created"
                _roster_changed(course, "joined", user)
                return
            row.password = ""  # never change an existing person's password from a file
            membership = Membership.objects.filter(course=course, user=existing).first()
            if membership and membership.is_active:
                row.status = "already"
                return
            if membership is None or existing.created_in_course_id != course.pk:
                raise AccountsError(
                    _(
                        "This user exists already; a roster file only makes new accounts. Ask "
                        "them to join with the class's join code."
                    )
                )
            # This class made the account and removed it earlier: the file brings it back.
            membership.removed_at = None
            membership.role = Role.STUDENT
            membership.save(update_fields=["removed_at", "role"])
            row.status = "added"
            _roster_changed(course, "joined", existing)
    except AccountsError as exc:
        row.error = exc.message
        row.password = ""


def issue_token(user: User, name: str = "") -> tuple[str, ApiToken]:
    """Create an API token; the raw value is returned once and only its hash is stored."""
    raw = "mnb_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:100], key_hash=hash_token(raw), prefix=raw[:12]
    )
    return raw, token


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def user_for_token(raw: str) -> User | None:
    """Return the active user owning this raw token, or None; records the last use."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
