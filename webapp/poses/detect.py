"""The person in a photo as a COCO-17 skeleton: MediaPipe's pose model, its 33 landmarks mapped
to the 17 keypoints (and edges) of COCO that the rest of Manabi uses, or a class's keypoints run.

Worker-side only (`webapp.poses.tasks`). `mp.solutions.pose` with `model_complexity=1` runs the
"full" landmark model, which ships inside the mediapipe 0.10.14 wheel with the person detector;
complexity 0 ("lite") and 2 ("heavy") would be downloaded on first use, so they are never asked
for. MediaPipe's pose solution follows ONE person: the most prominent one. Importing this module
loads nothing.
"""

import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MEDIAPIPE = "mediapipe"
MODEL_COMPLEXITY = 1  # the "full" model: the only one inside the wheel (see the docstring)
WORK_SIDE = 640  # photos are shrunk to this before inference (the model sees 256×256 anyway)
VISIBLE = 0.5  # MediaPipe's visibility (or a run's keypoint score) from which a point is visible
MAX_PEOPLE = 20  # a keypoints run answers its 20 most confident people at most
# A run's figure whose keypoint scores average below this is not shown: "no person found".
# The scores are in [0, 1]: pose_unet's is the heat map's probability in the 3×3 cells around
# its peak (a flat map over a 64-pixel input's 32 × 32 cells gives 9 / 1024 ≈ 0.009; a figure
# like its training pictures, 0.15 and more after a few epochs; a blank photo stays near the
# flat level), Keypoint R-CNN's a sigmoid of its heat-map logits. The heat-map model always
# answers its one figure, so without this a blank photo would get a skeleton.
MIN_FIGURE_SCORE = 0.05

COCO_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's person skeleton (person_keypoints_*.json, 1-based there), here 0-based index pairs.
COCO_SKELETON = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )
)  # fmt: skip
# MediaPipe's landmark index (mediapipe.python.solutions.pose.PoseLandmark) of each COCO keypoint.
# Both name the person's own left and right, so no side is swapped; the eyes are MediaPipe's
# centre eye points (2, 5), not the inner or outer corners.
MEDIAPIPE_INDEX = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

_lock = threading.Lock()  # one graph per process; eager Celery runs in the web server's threads
_pose: Any = None  # the loaded MediaPipe Pose, kept for the process's life


@dataclass
class Keypoint:
    name: str
    x: float  # in the photo's pixels; may lie outside the photo (then visibility is 0)
    y: float
    visibility: int  # COCO's flag: 2 visible, 1 in the photo but unsure (occluded), 0 outside


@dataclass
class Person:
    score: float  # MediaPipe: the mean visibility of the 17 keypoints; a run: its own score
    box: list[float]  # [x, y, w, h] in the photo's pixels, inside the photo
    keypoints: list[Keypoint]


@dataclass
class Poses:
    width: int
    height: int
    people: list[Person]
    source: str  # "mediapipe" or "job:<id>"
    seconds: float  # the model's own time, without decoding
    names: list[str] = field(default_factory=lambda: list(COCO_NAMES))
    skeleton: list[list[int]] = field(default_factory=lambda: [list(e) for e in COCO_SKELETON])

    def to_dict(self) -> dict:
        return asdict(self)


def visibility_flag(x: float, y: float, confidence: float, width: int, height: int) -> int:
    """COCO's visibility of a point: 0 outside the photo (whatever the model's confidence),
    2 inside it with confidence >= VISIBLE, else 1 (guessed: hidden or unsure)."""
    if not (0 <= x <= width and 0 <= y <= height):
        return 0
    return 2 if confidence >= VISIBLE else 1


def person_from_landmarks(landmarks: np.ndarray, width: int, height: int) -> Person:
    """The COCO-17 person of MediaPipe's 33 landmarks, (33, 3) rows of normalised x, y and
    visibility, in the pixels of a photo of `width` × `height`."""
    xs = landmarks[:, 0] * width  # (33,)
    ys = landmarks[:, 1] * height
    keypoints = []
    for name, index in zip(COCO_NAMES, MEDIAPIPE_INDEX, strict=True):
        x, y, confidence = float(xs[index]), float(ys[index]), float(landmarks[index, 2])
        flag = visibility_flag(x, y, confidence, width, height)
        keypoints.append(Keypoint(name, round(x, 1), round(y, 1), flag))
    score = float(np.mean(landmarks[list(MEDIAPIPE_INDEX), 2]))
    # The box holds all 33 landmarks (hands and feet too), cut to the photo.
    left, right = np.clip([xs.min(), xs.max()], 0, width)
    top, bottom = np.clip([ys.min(), ys.max()], 0, height)
    box = [round(float(v), 1) for v in (left, top, right - left, bottom - top)]
    return Person(round(score, 4), box, keypoints)


def find_pose(pixels: np.ndarray) -> Poses:
    """The person in an (H, W, 3) uint8 RGB photo, as COCO-17 keypoints (none when no one)."""
    height, width = pixels.shape[:2]
    small = _shrink(pixels, min(1.0, WORK_SIDE / max(height, width)))
    started = time.perf_counter()
    with _lock:
        landmarks = _mediapipe_landmarks(small)
    seconds = time.perf_counter() - started
    # MediaPipe's coordinates are fractions of the photo's sides: the shrunk photo's are the
    # original's, so they map back by the original size alone.
    people = [] if landmarks is None else [person_from_landmarks(landmarks, width, height)]
    return Poses(width, height, people, MEDIAPIPE, round(seconds, 4))


def figure_score(row: dict) -> float:
    """The mean score of a run's figure's keypoints (the figure's own score when it lists
    none)."""
    scores = [float(point.get("score") or 0.0) for point in row.get("keypoints") or []]
    return sum(scores) / len(scores) if scores else float(row.get("score") or 0.0)


def poses_of_run(answer: dict, job_id: int) -> Poses:
    """A keypoints run's answer (trainer.loops.keypoints.predict: keypoints with scores) in the
    pose view's shape: each score becomes a visibility flag as MediaPipe's does, and a figure
    whose keypoints score below MIN_FIGURE_SCORE on average is left out."""
    width, height = int(answer["width"]), int(answer["height"])
    people = []
    for row in answer.get("people") or []:
        if figure_score(row) < MIN_FIGURE_SCORE:
            continue  # the model is guessing: no one there
        keypoints = []
        for point in row.get("keypoints") or []:
            x, y = float(point["x"]), float(point["y"])
            flag = visibility_flag(x, y, float(point.get("score") or 0.0), width, height)
            keypoints.append(Keypoint(str(point["name"]), round(x, 1), round(y, 1), flag))
        box = [round(float(v), 1) for v in row.get("box") or [0, 0, 0, 0]]
        people.append(Person(round(float(row.get("score") or 0.0), 4), box, keypoints))
    people.sort(key=lambda person: -person.score)
    names = [str(name) for name in answer.get("names") or []]
    skeleton = [[int(a), int(b)] for a, b in answer.get("skeleton") or []]
    seconds = float(answer.get("seconds") or 0.0)
    return Poses(width, height, people[:MAX_PEOPLE], f"job:{job_id}", seconds, names, skeleton)


def _shrink(pixels: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return np.ascontiguousarray(pixels)
    from PIL import Image

    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))


def _mediapipe_landmarks(pixels: np.ndarray) -> np.ndarray | None:
    """MediaPipe's 33 landmarks of the person in the photo, (33, 3) normalised x, y and
    visibility, or None when it finds no one. Called under _lock."""
    global _pose
    if _pose is None:
        from mediapipe.python.solutions import pose

        # static_image_mode: every photo is detected afresh (no tracking between requests).
        _pose = pose.Pose(static_image_mode=True, model_complexity=MODEL_COMPLEXITY)
    with warnings.catch_warnings():  # protobuf 4 warns on mediapipe's code
        warnings.filterwarnings("ignore", "SymbolDatabase.GetPrototype", UserWarning)
        answer = _pose.process(pixels)  # (H, W, 3) RGB uint8
    if answer.pose_landmarks is None:
        return None
    return np.array([(p.x, p.y, p.visibility) for p in answer.pose_landmarks.landmark])
