"""Benchmark: face detection on a 640-pixel photo, the worker's whole task against bare MediaPipe.

    .venv/bin/python benchmarks/faces.py [--rounds 50] [--side 640]

In this process, no database or worker: scikit-image's astronaut resized to `--side` pixels and
encoded as a JPEG. Each round times, alternating, (1) the reference: MediaPipe's full-range
detector alone on the already decoded pixels, (2) Manabi: the `faces.detect` task's function on
the base64 JPEG (decode, check and EXIF orientation through `datasets.images`, detection, boxes
back in the photo's pixels) and (3) the Haar cascade fallback on the decoded pixels. The first
call of each (imports, loading the graph) is reported apart and left out of the medians. The
issue's target: under 0.5 s for a 640-pixel photo. The request's own part (upload checks, the
Celery round trip) is measured by tests/integration/test_faces.py on a real worker.
"""

import argparse
import base64
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _photo(side: int) -> tuple[bytes, object]:
    import numpy as np
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), np.asarray(image)


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def alternate(runs: dict, rounds: int) -> dict[str, list[float]]:
    """Each call of `runs` timed `rounds` times, alternating (a slow moment hits them alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(_timed(run))
    return times


def table(cold: dict[str, float], times: dict[str, list[float]]) -> None:
    """The figures as a Markdown table, each median's ratio to the first run's (the reference)."""
    from benchmarks.stack import percentile

    reference = statistics.median(next(iter(times.values())))
    print(f"\n| {'':28} | first call | median | p95 | ratio to reference |")
    print(f"|{'-' * 30}|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| {name:28} | {cold[name] * 1000:.0f} ms | {median * 1000:.1f} ms "
            f"| {percentile(values, 95) * 1000:.1f} ms | {reference / median:.2f} |"
        )


def start(doc: str) -> tuple[argparse.Namespace, bytes, object, str]:
    """A photo benchmark's start: its options, Django set up, the machine printed, and the
    astronaut photo as JPEG bytes, decoded pixels and the task's base64 payload."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="timed calls of each, alternating")
    parser.add_argument("--side", type=int, default=640, help="the photo's side in pixels")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from benchmarks.stack import machine

    print(machine())
    jpeg, pixels = _photo(args.side)
    return args, jpeg, pixels, base64.b64encode(jpeg).decode("ascii")


def main() -> None:
    args, jpeg, pixels, payload = start(__doc__)
    from mediapipe.python.solutions import face_detection

    from webapp.faces import detect, tasks

    bare = face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=detect.MIN_SCORE
    )
    runs = {
        "bare MediaPipe (reference)": lambda: bare.process(pixels),
        "Manabi faces.detect": lambda: tasks.detect_faces(payload),
        "Haar cascade fallback": lambda: detect.find_faces(pixels, detect.HAAR),
    }
    cold = {name: _timed(run) for name, run in runs.items()}
    answer = tasks.detect_faces(payload)
    print(
        f"{args.side}×{args.side} JPEG ({len(jpeg) / 1024:.0f} KB): {answer['detector']} found "
        f"{len(answer['faces'])} face(s), {answer['faces'][0] if answer['faces'] else '-'}"
    )
    times = alternate(runs, args.rounds)
    table(cold, times)
    manabi = statistics.median(times["Manabi faces.detect"])
    verdict = "✔" if manabi < 0.5 else "✘"
    print(f"\nTarget: under 0.5 s for a {args.side}-pixel photo: {manabi * 1000:.0f} ms {verdict}")


if __name__ == "__main__":
    main()
