"""Request and response shapes of the API (pydantic models through django-ninja).

Every number a request carries is bounded here, so that no value reaches the database or a
worker that they cannot hold: ids are positive 64-bit integers (`Id`), counts and pages have
ranges. The fuzzer in tests/integration/test_api_fuzz.py holds the API to these shapes.
"""

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from webapp.accounts.actions import LIMIT_MAX

MAX_ID = 2**63 - 1  # the database's 64-bit ids; a larger number is no row and no query
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A positive id (at most 2⁶³ − 1).")]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Role = Literal["teacher", "ta", "student"]


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(inner) for key, inner in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(inner) for inner in value)
    return False


class Body(Schema):
    """A JSON request body: each value has the JSON type the schema says (`"5"` is no number and
    `true` no 1), as the OpenAPI schema promises; path and query strings stay lax. No text may
    hold a NUL character (PostgreSQL cannot store one; it once made a class name answer 500)."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        if _holds_nul(value):
            raise ValueError("Text may not contain the NUL character (\\0).")
        return value


class ErrorOut(Schema):
    """Every error: what happened for a person, and the message of each field to fix."""

    detail: str
    errors: dict[str, str]


class Credentials(Body):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=4096)
    name: str = Field("", max_length=100, description="A label for the token, e.g. 'laptop'.")


class TokenOut(Schema):
    token: str


class TokenInfo(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class Registration(Body):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=4096)
    join_code: str = Field(min_length=1, max_length=20)


class UserOut(Schema):
    id: int
    username: str


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    is_teacher: bool


class CourseIn(Body):
    name: str = Field(min_length=1, max_length=120)


class JoinIn(Body):
    join_code: str = Field(min_length=1, max_length=20)


class CourseCreated(Schema):
    id: int
    name: str
    join_code: str


class Limits(Schema):
    gpu_minutes_per_student: int
    concurrent_jobs_per_student: int
    storage_mb_per_student: int


class CourseOut(Schema):
    id: int
    name: str
    role: Role | None = Field(description="teacher, ta or student; null for a site administrator")
    archived: bool
    join_code: str | None = Field(None, description="Only for the class's teachers and TAs.")
    join_open: bool | None = None
    limits: Limits


class CoursePatch(Body):
    name: str | None = Field(None, min_length=1, max_length=120)
    archived: bool | None = None
    join_open: bool | None = None
    gpu_minutes_per_student: int | None = Field(None, ge=0, le=LIMIT_MAX["gpu_minutes_per_student"])
    concurrent_jobs_per_student: int | None = Field(
        None, ge=0, le=LIMIT_MAX["concurrent_jobs_per_student"]
    )
    storage_mb_per_student: int | None = Field(None, ge=0, le=LIMIT_MAX["storage_mb_per_student"])


class JoinCodeOut(Schema):
    join_code: str


class MemberOut(Schema):
    id: int = Field(description="The user's id.")
    username: str
    display_name: str
    role: Role
    joined_at: datetime
    active: bool


class MemberPatch(Body):
    role: Role


class PasswordOut(Schema):
    password: str
