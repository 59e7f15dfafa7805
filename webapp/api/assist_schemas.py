"""Request and response shapes of model-assisted labelling (`/api/v1/datasets/{id}/assist`,
`/draft/accept`, `/draft/reject`)."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from webapp.api.schemas import Body, Id
from webapp.studio.assist import DEFAULT_LIMIT, MAX_LIMIT


class AssistIn(Body):
    job: Id = Field(description="A finished run of the dataset's class and kind you may use.")
    limit: int = Field(
        DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description=f"Images to pre-annotate, 1 to {MAX_LIMIT}: unlabelled ones first.",
    )


class RoundOut(Schema):
    """A pre-annotation round: `done` of `total` images answered, `proposed` proposals written
    into the caller's draft so far; `error` says why a failed round stopped."""

    id: int
    dataset: int
    job: int
    status: Literal["queued", "running", "done", "failed"]
    total: int
    done: int
    proposed: int
    error: str
    created_at: datetime
    finished_at: datetime | None


class RunOut(Schema):
    """A run the caller may pre-annotate with: its model, dataset, owner and primary figure."""

    id: int
    model: str
    dataset: str
    owner: str
    finished_at: datetime | None
    figure: str = Field(description="The name of the kind's primary figure.")
    value: str = Field(description="Its value as pages show it ('93.0%'), '' when unknown.")


class AssistOverview(Schema):
    runs: list[RunOut] = Field(description="Newest first, at most 50.")
    rounds: list[RoundOut] = Field(description="The caller's last 5 rounds, newest first.")
    max_limit: int
    default_limit: int


class AcceptIn(Body):
    threshold: float = Field(
        ge=0, le=1, description="Accept every proposal of your draft scoring at least this."
    )


class AcceptOut(Schema):
    accepted: int = Field(description="Proposals that became plain annotations or labels.")
    proposals: int = Field(description="Proposals still waiting in your draft.")


class RejectIn(Body):
    below: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Reject the proposals scoring below this; leave it out to reject all.",
    )


class RejectOut(Schema):
    rejected: int = Field(description="Proposals removed from your draft.")
    proposals: int = Field(description="Proposals still waiting in your draft.")
