"""`POST /api/v1/faces`: every face in an uploaded photo, boxed and scored, found on a worker."""

from typing import Annotated, Literal

from ninja import File, Router, Schema
from ninja.files import UploadedFile
from pydantic import Field

from webapp.api.base import WRITE, errors
from webapp.faces import tasks
from webapp.faces.detect import DETECTORS

router = Router(tags=["faces"])
Pixels = Annotated[int, Field(ge=0)]


class FaceOut(Schema):
    box: list[Pixels] = Field(
        min_length=4, max_length=4, description="[x, y, w, h] in the photo's pixels."
    )
    score: float | None = Field(
        ge=0,
        le=1,
        description="MediaPipe's confidence; from the Haar cascade its final stage's weight w "
        "as w / (w + 5), about 0.5 for a typical face: it ranks one photo's faces and is not a "
        "probability.",
    )


class FacesOut(Schema):
    faces: list[FaceOut] = Field(description="Most confident first; at most 100.")
    detector: Literal[DETECTORS] = Field(  # type: ignore[valid-type]
        description="Which detector answered: `mediapipe` (full-range face detector), or "
        "`opencv-haar` (Haar cascade) on a server where MediaPipe cannot be loaded."
    )
    width: Pixels = Field(description="The photo's width, after its EXIF orientation.")
    height: Pixels
    seconds: float = Field(description="From sending to the worker to its answer.")


@router.post(
    "/faces",
    response={200: FacesOut, **errors(*WRITE, 503)},
    openapi_extra={
        "description": "Any signed-in user. The photo (multipart field `image`: PNG, JPEG, GIF, "
        "BMP, WebP or TIFF, at most 10 MB and 40 megapixels) goes to a worker on the default "
        "queue; the request waits for the answer at most 30 s, as a job's predictions do, and "
        "answers 503 when no worker answered by then. A file that is no image answers 400 "
        "naming the field `image`."
    },
)
def find_faces(request, image: File[UploadedFile]):
    """Every face in an uploaded photo, with its box and score."""
    return tasks.find_faces_in_upload(image)
