"""What every kind's evaluation of a split shares (torch-free: the web app imports the keypoint
metrics' defaults)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, cast


class RowsApart:
    """An evaluation of a split whose per-image rows (`predictions`) go to their own file,
    predictions_<split>.json, never into the result or an event."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict without the per-image rows (nor a copy of them: every epoch's
        event carries this, and a split has a row per image)."""
        data = asdict(replace(cast(Any, self), predictions=[]))
        del data["predictions"]
        return data
