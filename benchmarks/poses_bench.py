"""Benchmark: pose estimation on a 640-pixel photo, the worker's whole task against bare MediaPipe.

    .venv/bin/python benchmarks/poses_bench.py [--rounds 50] [--side 640]

In this process, no database or worker, as benchmarks/faces.py: scikit-image's astronaut resized
to `--side` pixels and encoded as a JPEG. Each round times, alternating, (1) the reference:
MediaPipe's pose solution alone (`model_complexity=1`, `static_image_mode=True`, as Manabi
loads it) on the already decoded pixels, (2) `poses.detect.find_pose` on the decoded pixels
(MediaPipe plus the mapping to COCO-17) and (3) Manabi: the `poses.detect` task's function on
the base64 JPEG (decode, check and EXIF orientation through `datasets.images`, detection, the
keypoints back in the photo's pixels). The first call of each (imports, building the graph) is
reported apart and left out of the medians. The pose view's target: under 1 s for a 640-pixel
photo. The request's own part (upload checks, the Celery round trip) is measured by
tests/integration/test_poses.py on a real worker.
"""

import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.faces import _timed, alternate, start, table  # noqa: E402 - the same photo, clock and table


def main() -> None:
    args, jpeg, pixels, payload = start(__doc__)
    from mediapipe.python.solutions import pose

    from webapp.poses import detect, tasks

    bare = pose.Pose(static_image_mode=True, model_complexity=detect.MODEL_COMPLEXITY)

    def bare_call():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "SymbolDatabase.GetPrototype", UserWarning)
            return bare.process(pixels)

    runs = {
        "bare MediaPipe (reference)": bare_call,
        "poses.detect.find_pose": lambda: detect.find_pose(pixels),
        "Manabi poses.detect": lambda: tasks.detect_poses(payload),
    }
    cold = {name: _timed(run) for name, run in runs.items()}
    answer = tasks.detect_poses(payload)
    people = answer.get("people") or []
    points = people[0]["keypoints"] if people else []
    nose = next((point for point in points if point["name"] == "nose"), None)
    print(
        f"{args.side}×{args.side} JPEG ({len(jpeg) / 1024:.0f} KB): {answer.get('source')} found "
        f"{len(people)} person(s), score {people[0]['score'] if people else '-'}, nose {nose}"
    )
    times = alternate(runs, args.rounds)
    table(cold, times)
    manabi = statistics.median(times["Manabi poses.detect"])
    verdict = "✔" if manabi < 1.0 else "✘"
    print(f"\nTarget: under 1 s for a {args.side}-pixel photo: {manabi * 1000:.0f} ms {verdict}")


if __name__ == "__main__":
    main()
