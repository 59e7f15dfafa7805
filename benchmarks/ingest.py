"""Benchmark: dataset ingest speed and gallery latency (issue: datasets, "Speed").

    .venv/bin/python benchmarks/ingest.py [--images 10000] [--rounds 3] [--gallery 60000]

Prints, per round and as medians: Manabi's ingest (upload parts → `ready`) in images/s and its
peak memory, next to a bare loop in the same run (stream the ZIP, sha256, decode, thumbnail;
2 processes), alternating the two; then gallery page times at 60,000 images. It uses a
throwaway data folder and SQLite database, and never touches the network.
"""

import argparse
import hashlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_zip(path: Path, count: int) -> None:
    """A ZIP of `count` 64×64 RGB PNGs in 10 class folders: shapes with photo-like noise."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(0)  # noqa: S311 - test pictures, not secrets
    noise = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            image = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
            draw = ImageDraw.Draw(image)
            for _ in range(3):
                x, y = rng.randrange(48), rng.randrange(48)
                draw.ellipse(
                    (x, y, x + rng.randrange(8, 24), y + rng.randrange(8, 24)),
                    fill=tuple(rng.randrange(256) for _ in range(3)),
                )
            pixels = np.asarray(image, dtype=np.int16) + noise.normal(0, 8, (64, 64, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))  # camera noise
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            archive.writestr(f"bench/class_{i % 10}/{i:05d}.png", buffer.getvalue())


def _bare_worker(args) -> int:
    from PIL import Image

    path, names = args
    with zipfile.ZipFile(path) as archive:
        for name in names:
            data = archive.read(name)
            hashlib.sha256(data).hexdigest()
            image = Image.open(io.BytesIO(data))
            image.load()
            image.thumbnail((32, 32))
    return len(names)


def bare_loop(path: Path) -> float:
    """The reference: the same ZIP through sha256, decode and thumbnail on 2 processes."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".png")]
    start = time.perf_counter()
    with Pool(2) as pool:
        done = sum(pool.map(_bare_worker, [(path, names[0::2]), (path, names[1::2])]))
    return done / (time.perf_counter() - start)


MANABI_RUN = r"""
import json, os, resource, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from webapp.accounts.actions import create_course
from webapp.accounts.models import User
from webapp.datasets import actions, tasks
from webapp.datasets.models import Dataset, Upload
teacher = User.objects.create_user("bench", password="x", is_teacher=True)
course = create_course(teacher, "Benchmark")
path = sys.argv[1]
size = os.path.getsize(path)
start = time.perf_counter()
upload = actions.start_upload(teacher, course, "bench.zip", size)
with open(path, "rb") as source:
    offset = 0
    while chunk := source.read(4 * 1024 * 1024):
        upload = actions.receive_chunk(upload, offset, chunk)
        offset += len(chunk)
dataset = Dataset.objects.create(course=course, owner=teacher, name="b", kind="classification")
upload.completed_at = upload.created_at
upload.save()
tasks.ingest_upload(dataset.pk, str(upload.pk), "en")
seconds = time.perf_counter() - start
dataset.refresh_from_db()
assert dataset.status == "ready", dataset.error
count = dataset.items.count()
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        + 2 * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024  # task + 2 helpers
print(json.dumps({"images": count, "seconds": seconds, "peak_mb": peak}))
"""


def in_fresh_process(code: str, *args: str) -> dict:
    """Run a snippet with its own data folder and SQLite database; return its JSON line."""
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(MANABI_DATA_DIR=data, DJANGO_SETTINGS_MODULE="webapp.settings")
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        return json.loads(result.stdout.strip().splitlines()[-1])


def manabi_ingest(path: Path) -> dict:
    """Manabi's ingest in a fresh process with its own data folder and database."""
    return in_fresh_process(MANABI_RUN, str(path))


GALLERY_RUN = r"""
import json, statistics, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from webapp.accounts.actions import create_course
from webapp.accounts.models import User
from webapp.datasets.models import Category, Dataset, Item, StoredImage, Version
count = int(sys.argv[1])
teacher = User.objects.create_user("bench", password="x", is_teacher=True)
course = create_course(teacher, "Benchmark")
dataset = Dataset.objects.create(course=course, owner=teacher, name="g", kind="classification",
                                 status="ready", head=1)
images = [StoredImage.objects.create(sha256=f"{i:064x}", file=f"images/{i}.png",
          thumb=f"images/{i}.png", content_type="image/png", width=64, height=64, channels=3,
          bytes=100, phash="0" * 16) for i in range(100)]
Category.objects.bulk_create([Category(dataset=dataset, index=i, name=f"class_{i}", valid_from=1)
                              for i in range(10)])
splits = ["train"] * 8 + ["val"] * 2
Item.objects.bulk_create([Item(dataset=dataset, image=images[i % 100], original_path=f"{i}.png",
                               split=splits[i % 10], category_index=i % 10, valid_from=1)
                          for i in range(count)], batch_size=5000)
Version.objects.create(dataset=dataset, number=1, summary="b", counts={})
client = Client(HTTP_HOST="localhost")
client.force_login(teacher)
results = {}
last = count // 120 + 1
pages = [("first page", "?page=1"), ("middle page", f"?page={last // 2}"),
         ("last page", f"?page={last}"), ("class + split filter", "?class=3&split=val&page=5")]
for label, url in pages:
    times = []
    for _ in range(15):
        start = time.perf_counter()
        response = client.get(f"/datasets/{dataset.pk}/gallery/{url}")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    results[label] = statistics.median(times)
print(json.dumps(results))
"""


def gallery(count: int) -> dict:
    return in_fresh_process(GALLERY_RUN, str(count))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gallery", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.zip"
        make_zip(path, args.images)
        print(
            f"ZIP: {args.images} PNGs of 64×64, {path.stat().st_size / 1e6:.1f} MB; "
            f"{os.cpu_count()} CPUs"
        )
        bare, ours, peaks = [], [], []
        for round_number in range(1, args.rounds + 1):
            bare.append(bare_loop(path))
            run = manabi_ingest(path)
            assert run["images"] == args.images, run
            ours.append(run["images"] / run["seconds"])
            peaks.append(run["peak_mb"])
            print(
                f"round {round_number}: bare loop {bare[-1]:7.0f} img/s | Manabi "
                f"{ours[-1]:7.0f} img/s, peak {peaks[-1]:.0f} MB | ratio {ours[-1] / bare[-1]:.2f}"
            )
        print(
            f"median: bare loop {statistics.median(bare):.0f} img/s, Manabi "
            f"{statistics.median(ours):.0f} img/s (target ≥ 1500), ratio "
            f"{statistics.median(ours) / statistics.median(bare):.2f} (target ≥ 0.5), "
            f"peak memory {max(peaks):.0f} MB (target < 400)"
        )
    if args.gallery:
        times = gallery(args.gallery)
        for label, ms in times.items():
            print(f"gallery at {args.gallery} images, {label}: {ms:.1f} ms (target < 150)")


if __name__ == "__main__":
    main()
