"""Every face in a photo, boxed and scored: MediaPipe's face detector, OpenCV's Haar cascade as
the fallback where MediaPipe cannot be imported.

Worker-side only (`webapp.faces.tasks`). Both models ship inside their wheels (MediaPipe's
full-range BlazeFace model, the cascade in opencv-python-headless 4.x): nothing downloads.
The full-range model is used rather than the short-range one because classroom photos have
small faces: on a 640-pixel photo it finds faces down to about 40 pixels (the short-range one
stops near 60); smaller faces are missed. Importing this module loads nothing.
"""

import logging
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MEDIAPIPE = "mediapipe"
HAAR = "opencv-haar"
DETECTORS = (MEDIAPIPE, HAAR)
MIN_SCORE = 0.5  # MediaPipe's own default: below it, hands and patterns start to look like faces
MAX_FACES = 100  # a crowd photo answers its 100 most confident faces
WORK_SIDE = 1280  # larger photos are shrunk first (the model sees 192×192 anyway); boxes scale back
# The Haar cascade's score: its final stage's weight w (OpenCV's detectMultiScale3 with
# outputRejectLevels, the largest of a face's merged windows), mapped to w / (w + HAAR_HALF),
# 0 for w ≤ 0. A typical frontal face scores about 0.5: the faces of scikit-image's LFW subset
# (100 faces, 84 found, each centred on a grey 160-pixel canvas) weigh 1.4 to 10.8, median 5.4,
# and the astronaut 6.9 (0.58). It ranks one photo's faces, strongest first; it is not a
# probability and not comparable with MediaPipe's confidence (a grain of gravel the cascade
# took for a face weighed 5.2).
HAAR_HALF = 5.0

_lock = threading.Lock()  # one graph per process; eager Celery runs in the web server's threads
_mediapipe: Any = None  # the loaded MediaPipe detector, kept for the process's life
_haar: Any = None


@dataclass
class Face:
    box: list[int]  # [x, y, w, h] in the photo's pixels
    score: float | None  # MediaPipe's confidence, or the Haar cascade's weight (HAAR_HALF)


@dataclass
class Found:
    faces: list[Face]
    detector: str  # which detector answered: MEDIAPIPE or HAAR
    width: int
    height: int
    seconds: float  # the detector's own time, without decoding

    def to_dict(self) -> dict:
        return asdict(self)


def find_faces(pixels: np.ndarray, detector: str | None = None) -> Found:
    """The faces in an (H, W, 3) uint8 RGB photo, most confident first.

    `detector` picks one (tests, the benchmark); by default MediaPipe, else the cascade.
    """
    height, width = pixels.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = _shrink(pixels, scale)
    started = time.perf_counter()
    raw: list[tuple[list[float], float | None]] | None = None  # boxes on the shrunk photo
    with _lock:
        if detector in (None, MEDIAPIPE) and _load_mediapipe(required=detector == MEDIAPIPE):
            try:
                detector, raw = MEDIAPIPE, _mediapipe_faces(small)
            except (RuntimeError, ValueError) as exc:  # its graph refused this photo
                if detector == MEDIAPIPE:
                    raise
                log.warning(
                    "MediaPipe failed on a %s×%s photo (%s); Haar answers", width, height, exc
                )
        if raw is None:
            detector, raw = HAAR, _haar_faces(small)
    seconds = time.perf_counter() - started
    faces = [Face(_to_photo(box, scale, width, height), score) for box, score in raw]
    faces = [face for face in faces if face.box[2] > 0 and face.box[3] > 0]
    faces.sort(key=lambda face: -(face.score or 0.0))
    return Found(faces[:MAX_FACES], detector, width, height, round(seconds, 4))


def _shrink(pixels: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return np.ascontiguousarray(pixels)
    from PIL import Image

    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))


def _to_photo(box, scale: float, width: int, height: int) -> list[int]:
    """A box found on the shrunk photo, in the photo's pixels and inside it."""
    x, y, w, h = (value / scale for value in box)
    left, top = max(0, round(x)), max(0, round(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    return [left, top, right - left, bottom - top]


def _load_mediapipe(required: bool) -> bool:
    """Whether MediaPipe's detector is ready; loaded once per process."""
    global _mediapipe
    if _mediapipe is not None:
        return True
    try:
        from mediapipe.python.solutions import face_detection
    except ImportError as exc:
        if required:
            raise
        log.warning("MediaPipe cannot be imported (%s); faces fall back to the Haar cascade", exc)
        return False
    # model_selection=1: the full-range model (faces up to ~5 m away), see the module docstring.
    _mediapipe = face_detection.FaceDetection(model_selection=1, min_detection_confidence=MIN_SCORE)
    return True


def _mediapipe_faces(pixels: np.ndarray) -> list[tuple[list[float], float | None]]:
    height, width = pixels.shape[:2]
    with warnings.catch_warnings():  # under _lock; protobuf 4 warns on mediapipe's code
        warnings.filterwarnings("ignore", "SymbolDatabase.GetPrototype", UserWarning)
        answer = _mediapipe.process(pixels)  # (H, W, 3) RGB uint8
    faces: list[tuple[list[float], float | None]] = []
    for detection in answer.detections or []:
        box = detection.location_data.relative_bounding_box  # fractions of the photo's sides
        xywh = [box.xmin * width, box.ymin * height, box.width * width, box.height * height]
        faces.append((xywh, round(float(detection.score[0]), 4)))
    return faces


def _haar_faces(pixels: np.ndarray) -> list[tuple[list[float], float | None]]:
    global _haar
    import cv2

    if _haar is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        _haar = cv2.CascadeClassifier(path)
        if _haar.empty():  # opencv 5.x ships no cascades: pyproject pins 4.x
            raise RuntimeError(f"OpenCV's face cascade is missing at {path}")
    gray = cv2.equalizeHist(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))  # (H, W)
    # scaleFactor 1.2 rather than 1.1: about twice as fast, the same faces on the test photos
    boxes, _levels, weights = _haar.detectMultiScale3(
        gray, scaleFactor=1.2, minNeighbors=5, minSize=(24, 24), outputRejectLevels=True
    )
    return [
        ([float(v) for v in box], haar_score(float(weight)))
        for box, weight in zip(boxes, np.ravel(weights), strict=True)
    ]


def haar_score(weight: float) -> float:
    """The cascade's final-stage weight as a score in [0, 1): w / (w + HAAR_HALF), 0 for w ≤ 0
    (see HAAR_HALF)."""
    weight = max(0.0, weight)
    return round(weight / (weight + HAAR_HALF), 4)
