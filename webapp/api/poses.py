"""`POST /api/v1/poses`: the person's skeleton in an uploaded photo (COCO-17 keypoints and
edges), found on a worker by MediaPipe's pose model or by a keypoints run the caller may see."""

from typing import Annotated

from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile
from pydantic import Field

from webapp.api.base import WRITE, errors
from webapp.api.schemas import Id
from webapp.poses import tasks

router = Router(tags=["poses"])
Pixels = Annotated[int, Field(ge=0)]


class PoseForm(Schema):
    """The form fields besides the photo."""

    job: Id | None = Field(
        None,
        description="A succeeded keypoints run the caller may see; its model answers instead of "
        "MediaPipe's.",
    )


class KeypointOut(Schema):
    name: str
    x: float = Field(description="In the photo's pixels; may lie outside it (visibility 0).")
    y: float
    visibility: int = Field(
        ge=0,
        le=2,
        description="COCO's flag: 2 visible (confidence at least 0.5), 1 in the photo but "
        "unsure or hidden, 0 outside the photo.",
    )


class PersonOut(Schema):
    score: float = Field(
        description="MediaPipe: the mean visibility of the 17 keypoints; a run: its own score."
    )
    box: list[float] = Field(
        min_length=4, max_length=4, description="[x, y, w, h] in the photo's pixels."
    )
    keypoints: list[KeypointOut] = Field(description="One per name, in the order of `names`.")


class PosesOut(Schema):
    width: Pixels = Field(description="The photo's width, after its EXIF orientation.")
    height: Pixels
    names: list[str] = Field(
        description="The keypoints' names: COCO-17's (nose, left_eye, ... right_ankle) from "
        "MediaPipe; the dataset's own from a run."
    )
    skeleton: list[list[int]] = Field(
        description="The skeleton's edges as 0-based index pairs into `names`."
    )
    people: list[PersonOut] = Field(
        description="Empty when no person was found. MediaPipe finds one person at most (the "
        "most prominent); a run at most 20, most confident first."
    )
    seconds: float = Field(description="From sending to the worker to its answer.")
    source: str = Field(description="`mediapipe`, or `job:<id>` for a run's model.")


@router.post(
    "/poses",
    response={200: PosesOut, **errors(*WRITE, 404, 409, 503)},
    openapi_extra={
        "description": "Any signed-in user. The photo (multipart field `image`: PNG, JPEG, GIF, "
        "BMP, WebP or TIFF, at most 10 MB and 40 megapixels) goes to a worker on the default "
        "queue, which runs MediaPipe's pose model (model_complexity=1) and maps its 33 "
        "landmarks to COCO's 17 keypoints; with the field `job`, a succeeded keypoints run the "
        "caller may see answers instead (404 naming `job` for a run one may not see, 400 for "
        "a run of another kind, 409 while it has no model). The request waits for the answer "
        "at most 30 s and answers 503 when no worker answered by then. A file that is no "
        "image answers 400 naming the field `image`."
    },
)
def find_poses(request, image: File[UploadedFile], payload: Form[PoseForm]):
    """The skeleton of the person in an uploaded photo: named keypoints and edges."""
    return tasks.find_poses_in_upload(image, request.user, payload.job)
