"""Benchmark: the annotation studio's canvas in real Chromium (frames, edits, saves, next image).

Pan and zoom frames, drawing and moving a box, one change saved, the next image shown.

    .venv/bin/python benchmarks/studio_bench.py [--rounds 3] [--quick] [--json out.json]

A throwaway installation (SQLite, private Redis, daphne as the run command starts it, production
settings). A detection dataset whose first image (4000×3000) holds 2,000 boxes and a segmentation
dataset whose first image holds 300 polygons of 50 vertices; each has a second such image (the
next one) and two empty images of the same size (the reference and its next). Debian's Chromium
through Playwright, headless, as the browser tests launch it, signed in as the datasets' owner.

Each visit opens one image's canvas, waits until the next image is fetched and decoded ahead,
then: 2 × `--wheel` real wheel events (zoom in, then out) and a middle-button drag (pan), noting
every frame (from its first input event or animation-frame callback to the end of its rendering:
a task posted from the frame runs after style, layout, paint and raster) and the Konva layers'
draw times; draws `--adds`
boxes and moves the last one, each time from the pointer event's timeStamp to the end of the
first frame that draws a layer after it; `--saves` nudges of that box with an arrow key, each
from the key to its row in the database (a thread polls the SQLite file), checking that each
request carried that one change; the same with the autosave's idle wait set to 0 (an
experiment); the next image, from the key `d` to the end of the frame that draws it.

Rounds alternate a reference visit (an empty image on the same page) and the measured one, for
each dataset; each figure is the median of the rounds' figures (a round's p95 for the
distributions), printed beside the reference and their ratio. Timings drift ±20% on a 2-core
machine: compare ratios, and note the load average (printed at the start and the end).

The seven fixes this benchmark found (one strokeRect per box, 1-pixel polygon outlines, the
view moved by a CSS transform during gestures, a dragged shape on the overlay layer, images read
ahead kept as ImageBitmaps, a save state of one width, at most 200 objects listed) were tried
here as page patches first and are in the studio now; docs/benchmarks.md has both runs.
"""

import argparse
import io
import json
import math
import os
import random
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import Stack, machine, make_class, percentile  # noqa: E402

CATEGORIES = ["car", "person", "bicycle", "dog", "cat"]
READY = "#studio-canvas[data-ready=true]"
SAVED = "#studio-save[data-state=saved]"
FRAME_MS = 1000 / 60
TARGETS = {  # the issue's: ms, compared with the figure named
    "zoom frame p95": 16,
    "pan frame p95": 16,
    "add box → frame": 50,
    "move box → frame p95": 50,
    "drop box → frame": 50,
    "save: change → in DB p95": 100,
    "next image → frame": 150,
}

# Installed before the page's own scripts on every navigation: notes image decodes (the queue
# fetches ahead), the autosave's requests, frames, Konva layer draws and input-to-frame delays.
JS_INIT = r"""
(() => {
  const B = (window.__bench = {
    decodes: [], saves: [], keys: [], pending: [], latencies: [], arm: {},
    frame: null, frames: [], recording: false, loaded: null, installed: false,
  });
  const decode = HTMLImageElement.prototype.decode;
  HTMLImageElement.prototype.decode = function () {
    const entry = { src: this.src, done: null };
    B.decodes.push(entry);
    return decode.call(this).then((value) => { entry.done = performance.now(); return value; });
  };
  const fetch0 = window.fetch;
  window.fetch = function (url, options) {
    if (!String(url).includes("/draft/changes")) return fetch0.apply(this, arguments);
    const body = (options || {}).body || null;
    const entry = { start: performance.now(), end: null, status: null, body };
    B.saves.push(entry);
    return fetch0.apply(this, arguments).then((response) => {
      entry.end = performance.now();
      entry.status = response.status;
      return response;
    });
  };
  // A task posted during a frame runs once that frame's main-thread work (rAF callbacks, style,
  // layout, paint) is done: "the frame that shows it" ends then.
  const channel = new MessageChannel();
  let after = [];
  channel.port1.onmessage = () => {
    const t = performance.now();
    const run = after;
    after = [];
    run.forEach((f) => f(t));
  };
  B.afterFrame = (f) => {
    after.push(f);
    if (after.length === 1) channel.port2.postMessage(0);
  };
  B.expect = (label, t0, layer) => B.pending.push({ label, t0, layer });
  B.install = () => {
    if (B.installed) return;
    B.installed = true;
    const studio = window.manabiStudio;
    const names = new Map([
      [studio.layer, "shapes"], [studio.imageLayer, "image"], [studio.overlay, "overlay"],
    ]);
    const name = (l) => names.get(l) || "other";
    const draw = Konva.Layer.prototype.draw;
    Konva.Layer.prototype.draw = function (...args) {
      const t0 = performance.now();
      const out = draw.apply(this, args);
      const t1 = performance.now();
      const layer = name(this);
      if (B.frame) {
        B.frame.draw += t1 - t0;
        B.frame.layers[layer] = (B.frame.layers[layer] || 0) + t1 - t0;
      }
      const mine = (p) => p.layer === null || p.layer === layer;
      const due = B.pending.filter(mine);
      if (due.length) {
        B.pending = B.pending.filter((p) => !mine(p));
        B.afterFrame((t) => due.forEach((p) => B.latencies.push({ label: p.label, ms: t - p.t0 })));
      }
      return out;
    };
    const el = studio.container;
    const earliest = (e) => {
      const all = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      return all.length ? all[0].timeStamp : e.timeStamp;
    };
    el.addEventListener("pointermove", (e) => {
      const label = B.arm.pointermove;
      if (!label || B.pending.some((p) => p.label === label)) return;
      B.expect(label, earliest(e), null);
    }, true);
    el.addEventListener("pointerup", (e) => {
      const label = B.arm.pointerup;
      if (!label) return;
      B.arm.pointerup = B.arm.pointermove = null;
      B.pending = [];
      B.expect(label, e.timeStamp, null);
    }, true);
    document.addEventListener("keydown", (e) => {
      B.keys.push({ key: e.key, t: e.timeStamp });
      if (B.arm.keydown && e.key === B.arm.key) {
        B.expect(B.arm.keydown, e.timeStamp, "image");
        B.arm.keydown = null;
      }
    }, true);
    studio.on("load", (item) => (B.loaded = item.uid));
  };
  // A frame's work starts at its first input event (handled before its rAF callbacks, or
  // between frames) or at its first rAF callback, and ends when its rendering is done.
  const input = () => {
    if (B.recording && B.inputAt === null) B.inputAt = performance.now();
  };
  for (const type of ["wheel", "pointermove", "pointerdown", "pointerup"]) {
    window.addEventListener(type, input, { capture: true, passive: true });
  }
  B.startFrames = () => {
    B.frames = [];
    B.recording = true;
    B.inputAt = null;
    const tick = (ts) => {
      if (!B.recording) return void (B.frame = null);
      const begin = Math.min(performance.now(), B.inputAt ?? Infinity);
      B.inputAt = null;
      const frame = { ts, begin, draw: 0, layers: {}, done: null };
      B.frame = frame;
      B.frames.push(frame);
      B.afterFrame((t) => (frame.done = t));
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  };
  B.stopFrames = () => {
    B.recording = false;
    return B.frames.filter((f) => f.done !== null);
  };
  B.profile = () => {
    const s = window.manabiStudio;
    const all = (layer) => layer.find(() => true);
    return {
      annotations: s.annotations.size,
      groups: s.layer.getChildren().length,
      shapes: all(s.layer).filter((n) => !n.getChildren).length,
      listening: all(s.layer).filter((n) => n.listening()).length,
      layer_listening: s.layer.listening(),
      overlay_nodes: all(s.overlay).length,
      objects_listed: document.querySelectorAll("#studio-objects li").length,
      pixel_ratio: window.devicePixelRatio,
      canvas: [s.stage.width(), s.stage.height()],
    };
  };
})();
"""

# Experiments: JavaScript run before the page's scripts ("before") or once the canvas is ready
# ("after"). None of them is the product's code; each tests a fix the report describes.
# --- the data ------------------------------------------------------------------------------


def picture(width: int, height: int, tint: int) -> bytes:
    """A smooth photo-like JPEG (gradients and ripples), different for each `tint`."""
    import numpy as np
    from PIL import Image

    x = np.linspace(0, 1, width, dtype=np.float32)
    y = np.linspace(0, 1, height, dtype=np.float32)
    ripple = np.add.outer(np.sin(y * 40 + tint) * 25, np.sin(x * 55) * 25)
    channels = [
        np.add.outer(y * 90, x * 120) + ripple + 40 + 20 * tint,
        np.add.outer(y * 140, x * 40) - ripple + 60,
        np.add.outer(y * 30, x * 150) + ripple * 0.5 + 80 - 10 * tint,
    ]
    pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def boxes(rng: random.Random, n: int, width: int, height: int) -> list:
    from webapp.datasets.records import SourceAnnotation

    found = []
    for _ in range(n):
        w = rng.uniform(0.005, 0.075) * width
        h = rng.uniform(0.007, 0.1) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        bbox = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
        found.append(SourceAnnotation(category=rng.choice(CATEGORIES), bbox=bbox))
    return found


def polygons(rng: random.Random, n: int, vertices: int, width: int, height: int) -> list:
    """Star-ish rings of `vertices` points around random centres, with their bboxes."""
    from webapp.datasets.records import SourceAnnotation

    found = []
    for _ in range(n):
        r = rng.uniform(0.01, 0.05) * width
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        ring = []
        for k in range(vertices):
            angle = 2 * math.pi * k / vertices
            radius = r * rng.uniform(0.75, 1.0)
            ring += [cx + radius * math.cos(angle), cy + radius * math.sin(angle)]
        ring = [round(v, 2) for v in ring]
        xs, ys = ring[0::2], ring[1::2]
        bbox = [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]
        category = rng.choice(CATEGORIES)
        found.append(SourceAnnotation(category=category, bbox=bbox, segmentation=[ring]))
    return found


def dataset(owner, course, kind: str, images: list[tuple[str, bytes, list]]) -> dict:
    """A dataset of the given images, ingested in this process; its id and items in order."""
    from django.urls import reverse

    from webapp.datasets import ingest
    from webapp.datasets import tasks as dataset_tasks
    from webapp.datasets.models import Dataset, Item
    from webapp.datasets.records import CategoryInfo, SourceImage

    row = Dataset.objects.create(course=course, owner=owner, name=f"bench {kind}", kind=kind)
    records = [
        SourceImage(path=path, read=(lambda data=data: data), annotations=annotations)
        for path, data, annotations in images
    ]
    run = ingest.Ingest(row, ingest.Categories([CategoryInfo(n) for n in CATEGORIES]), processes=1)
    run.run(records)
    dataset_tasks._finish(run, row, "coco")
    row.refresh_from_db()
    if row.status != "ready":
        raise SystemExit(f"the {kind} dataset did not ingest: {row.error} {row.report}")
    items = Item.objects.filter(dataset=row, valid_to__isnull=True).order_by("id")
    found = [
        {"uid": str(i.uid), "image": reverse("dataset_image", args=[row.pk, i.pk])} for i in items
    ]
    return {"id": row.pk, "items": found}


def build(args) -> dict:
    """The owner, the two datasets, and the visits (scenes) of a round."""
    from django.conf import settings
    from django.test import Client

    rng = random.Random(13)  # noqa: S311 - made-up shapes, not secrets
    teacher, course, _tas, _students = make_class(0)
    w, h = args.width, args.height
    plain = [picture(w, h, tint) for tint in range(8)]
    detection = dataset(
        teacher,
        course,
        "detection",
        [
            ("boxes-1.jpg", plain[0], boxes(rng, args.boxes, w, h)),
            ("boxes-2.jpg", plain[1], boxes(rng, args.boxes, w, h)),
            ("empty-1.jpg", plain[2], []),
            ("empty-2.jpg", plain[3], []),
        ],
    )
    segmentation = dataset(
        teacher,
        course,
        "segmentation",
        [
            ("polygons-1.jpg", plain[4], polygons(rng, args.polygons, args.vertices, w, h)),
            ("polygons-2.jpg", plain[5], polygons(rng, args.polygons, args.vertices, w, h)),
            ("empty-1.jpg", plain[6], []),
            ("empty-2.jpg", plain[7], []),
        ],
    )
    client = Client()
    client.force_login(teacher)
    boxes_name = f"{args.boxes:,} boxes"
    polygons_name = f"{args.polygons:,} polygons × {args.vertices}"

    def scene(key, name, data, first, kind):
        items = data["items"]
        return {
            "key": key,
            "name": name,
            "kind": kind,
            "dataset": data["id"],
            "item": items[first]["uid"],
            "next": items[first + 1]["uid"],
            "next_image": items[first + 1]["image"],
        }

    name = settings.SESSION_COOKIE_NAME
    return {
        "cookie": {"name": name, "value": client.cookies[name].value},
        "pairs": [
            (
                scene("detection-empty", "empty image", detection, 2, "detection"),
                scene("boxes", boxes_name, detection, 0, "detection"),
            ),
            (
                scene("segmentation-empty", "empty image", segmentation, 2, "segmentation"),
                scene("polygons", polygons_name, segmentation, 0, "segmentation"),
            ),
        ],
    }


# --- the database watch --------------------------------------------------------------------


class RowWatch:
    """Polls the SQLite file (WAL: a reader never blocks the server) for a draft row's change."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout = 1000")

    def read(self, uid: str):
        row = self.conn.execute(
            "SELECT data FROM datasets_draftchange WHERE uid = ?", (uuid.UUID(uid).hex,)
        ).fetchone()
        return row[0] if row else None

    def start(self, uid: str, before) -> threading.Thread:
        """A thread that notes (time.time()) when the row differs from `before`."""
        thread = threading.Thread(target=self._poll, args=(uid, before), daemon=True)
        thread.changed_at = None  # type: ignore[attr-defined]
        self._thread = thread
        thread.start()
        return thread

    def _poll(self, uid: str, before) -> None:
        thread = self._thread
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.read(uid) != before:
                thread.changed_at = time.time()  # type: ignore[attr-defined]
                return
            time.sleep(0.001)


# --- one visit of the canvas ---------------------------------------------------------------


def clock_offset(page) -> float:
    """The page's epoch clock (timeOrigin + now) minus this process's, in ms (best of 5)."""
    best = None
    for _ in range(5):
        before = time.time() * 1000
        js = page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, js - (before + after) / 2)
    return best[1]


def screen(page, x: float, y: float) -> tuple[float, float]:
    """An image point in the page's pixels, as the canvas shows it now."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
              const s = window.manabiStudio, r = s.container.getBoundingClientRect();
              return [r.left + s.stage.x() + x * s.scale, r.top + s.stage.y() + y * s.scale];
            }""",
            [x, y],
        )
    )


def latency(page, label: str, count: int = 1) -> list[float]:
    page.wait_for_function(
        "([label, n]) => __bench.latencies.filter((l) => l.label === label).length >= n",
        arg=[label, count],
        timeout=30_000,
    )
    return page.evaluate(
        "(label) => __bench.latencies.filter((l) => l.label === label).map((l) => l.ms)", label
    )


def frames(page, drive) -> dict:
    """Run `drive()` while every frame is noted; the frames that drew something."""
    page.evaluate("__bench.startFrames()")
    drive()
    time.sleep(0.15)
    noted = page.evaluate("__bench.stopFrames()")
    drawn = [f for f in noted if f["draw"] > 0]
    if not drawn:
        raise SystemExit("no frame drew anything while the view moved")
    times = [f["done"] - f["begin"] for f in drawn]
    late = [f["done"] - f["ts"] for f in drawn]
    draws = [f["draw"] for f in drawn]
    intervals = [b["ts"] - a["ts"] for a, b in zip(noted, noted[1:], strict=False)]
    layers: dict[str, list[float]] = {}
    for f in drawn:
        for name, ms in f["layers"].items():
            layers.setdefault(name, []).append(ms)
    return {
        "frames": len(drawn),
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "max": max(times),
        "draw p95": percentile(draws, 95),
        "vsync to done p95": percentile(late, 95),
        "interval p95": percentile(intervals, 95) if intervals else float("nan"),
        "layers p95": {name: percentile(ms, 95) for name, ms in layers.items()},
    }


def visit(page, base: str, scene: dict, args, watch: RowWatch, bodies: list) -> dict:
    """One image's canvas, every measurement; returns the figures of this visit."""
    out: dict = {}
    pace = 1 / 60
    started = time.perf_counter()
    page.goto(f"{base}/datasets/{scene['dataset']}/studio/{scene['item']}/")
    page.wait_for_selector(READY, timeout=60_000)
    out["page ready"] = (time.perf_counter() - started) * 1000
    page.evaluate("__bench.install()")
    page.wait_for_function(
        "(src) => __bench.decodes.some((d) => d.src.endsWith(src) && d.done !== null)",
        arg=scene["next_image"],
        timeout=60_000,
    )
    time.sleep(0.3)
    out["profile"] = page.evaluate("__bench.profile()")
    box = page.locator("#studio-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)

    def zoom():
        for dy in [-120] * args.wheel + [120] * args.wheel:
            page.mouse.wheel(0, dy)
            time.sleep(pace)

    zoomed = frames(page, zoom)
    page.focus("#studio-canvas")
    page.keyboard.press("0")  # fit

    def pan():
        page.mouse.move(cx, cy)
        page.mouse.down(button="middle")
        for k in list(range(1, args.pan + 1)) + list(range(args.pan, -1, -1)):
            page.mouse.move(cx + 6 * k, cy + 4 * k)
            time.sleep(pace)
        page.mouse.up(button="middle")

    panned = frames(page, pan)
    page.keyboard.press("0")
    for name, figures in (("zoom", zoomed), ("pan", panned)):
        for key in ("p50", "p95", "max", "draw p95", "vsync to done p95", "interval p95"):
            out[f"{name} frame {key}"] = figures[key]
        out[f"{name} layers p95"] = figures["layers p95"]
        out[f"{name} frames"] = figures["frames"]

    # Draw boxes (the box tool), then move the last one (it is selected once drawn).
    page.locator("[data-tool=box]").click()
    w, h = page.evaluate("[manabiStudio.image.width, manabiStudio.image.height]")
    bw, bh = 0.08 * w, 0.1 * h
    for i in range(args.adds):
        x0, y0 = (0.25 + 0.12 * i) * w, 0.35 * h
        page.evaluate("__bench.arm.pointerup = 'add'")
        page.mouse.move(*screen(page, x0, y0))
        page.mouse.down()
        page.mouse.move(*screen(page, x0 + bw, y0 + bh), steps=4)
        page.mouse.up()
        adds = latency(page, "add", i + 1)
    out["add box → frame"] = statistics.median(adds)
    uid = page.evaluate("manabiStudio.selected")
    if not uid:
        raise SystemExit("the box drawn is not selected")
    page.wait_for_selector(SAVED, timeout=20_000)
    x, y = page.evaluate("(uid) => manabiStudio.annotations.get(uid).bbox.slice(0, 2)", uid)
    sx, sy = screen(page, x + bw / 2, y + bh / 2)
    page.mouse.move(sx, sy)
    page.evaluate("__bench.arm.pointermove = 'move'")
    page.mouse.down()
    for k in range(1, args.moves + 1):
        page.mouse.move(sx + 5 * k, sy + 3 * k)
        time.sleep(pace)
    page.evaluate("__bench.arm.pointerup = 'drop'")
    page.mouse.up()
    out["drop box → frame"] = latency(page, "drop")[0]
    moves = page.evaluate("__bench.latencies.filter((l) => l.label === 'move').map((l) => l.ms)")
    if not moves:
        raise SystemExit("no frame followed the box's moves")
    out["move box → frame p50"] = percentile(moves, 50)
    out["move box → frame p95"] = percentile(moves, 95)
    page.wait_for_selector(SAVED, timeout=20_000)

    # Saves: an arrow key nudges the selected box: one change, one request, one row.
    offset = clock_offset(page)
    origin = page.evaluate("performance.timeOrigin")
    for mode, idle in (("", None), (", idle 0", 0)):
        if idle is not None:
            page.evaluate("(ms) => (manabiStudio.saver.idleMs = ms)", idle)
        to_db, sent_to_db, round_trip = [], [], []
        for _ in range(args.saves):
            before = watch.read(uid)
            sent = page.evaluate("__bench.saves.length")
            keys = page.evaluate("__bench.keys.length")
            del bodies[:]
            thread = watch.start(uid, before)
            page.keyboard.press("ArrowRight")
            thread.join()
            if thread.changed_at is None:
                raise SystemExit("the nudged box never reached the database")
            page.wait_for_function(
                "(n) => __bench.saves.length > n && __bench.saves.every((s) => s.end !== null)",
                arg=sent,
            )
            page.wait_for_selector(SAVED, timeout=20_000)
            key = page.evaluate(
                "(n) => __bench.keys.slice(n).find((k) => k.key === 'ArrowRight')", keys
            )
            request = page.evaluate("(n) => __bench.saves[n]", sent)
            db = thread.changed_at * 1000 + offset - origin  # on the page's clock
            to_db.append(db - key["t"])
            sent_to_db.append(db - request["start"])
            round_trip.append(request["end"] - request["start"])
            changes = [c for body in bodies for c in json.loads(body)["changes"]]
            if len(bodies) != 1 or len(changes) != 1 or changes[0].get("uid") != uid:
                raise SystemExit(f"a save of one change sent {len(bodies)} requests: {changes}")
            if changes[0]["op"] != "update":
                raise SystemExit(f"a nudge was sent as {changes[0]['op']}")
        out[f"save: change → in DB p95{mode}"] = percentile(to_db, 95)
        out[f"save: request sent → in DB p95{mode}"] = percentile(sent_to_db, 95)
        out[f"save: request round trip p95{mode}"] = percentile(round_trip, 95)

    # The next image (fetched and decoded ahead).
    page.focus("#studio-canvas")
    page.evaluate("__bench.arm.key = 'd'; __bench.arm.keydown = 'next'")
    page.keyboard.press("d")
    out["next image → frame"] = latency(page, "next")[0]
    page.wait_for_function("(uid) => __bench.loaded === uid", arg=scene["next"])

    status = page.evaluate(
        """() => {
          const c = JSON.parse(document.getElementById('studio-config').textContent);
          return fetch(c.urls.draft, {method: 'DELETE', headers: {'X-CSRFToken': c.csrf}})
            .then((r) => r.status);
        }"""
    )
    if status != 204:
        raise SystemExit(f"discarding the draft answered {status}")
    page.evaluate("localStorage.clear()")
    return out


# --- the report ----------------------------------------------------------------------------

FIGURES = [
    "page ready",
    "zoom frame p50",
    "zoom frame p95",
    "zoom frame max",
    "zoom frame draw p95",
    "zoom frame vsync to done p95",
    "zoom frame interval p95",
    "pan frame p50",
    "pan frame p95",
    "pan frame max",
    "pan frame draw p95",
    "pan frame vsync to done p95",
    "pan frame interval p95",
    "add box → frame",
    "move box → frame p50",
    "move box → frame p95",
    "drop box → frame",
    "save: change → in DB p95",
    "save: request sent → in DB p95",
    "save: request round trip p95",
    "save: change → in DB p95, idle 0",
    "save: request sent → in DB p95, idle 0",
    "next image → frame",
]


def brief(figures: dict) -> str:
    return (
        f"zoom p95 {figures['zoom frame p95']:.1f}, pan p95 {figures['pan frame p95']:.1f}, "
        f"add {figures['add box → frame']:.1f}, move p95 {figures['move box → frame p95']:.1f}, "
        f"save→DB p95 {figures['save: change → in DB p95']:.1f}, "
        f"next {figures['next image → frame']:.1f} ms"
    )


def summary(runs: list[dict]) -> dict:
    """Each figure's median over the rounds."""
    return {name: statistics.median(run[name] for run in runs) for name in FIGURES}


def report(pairs, results: dict) -> dict:
    table = {}
    for reference, measured in pairs:
        ref, mine = summary(results[reference["key"]]), summary(results[measured["key"]])
        print(f"\n{measured['name']} ({measured['kind']}) against an empty image on the same page")
        head = f"{'figure (ms, median of rounds)':42s} {'reference':>10s} {'measured':>10s}"
        print(f"{head} {'ratio':>6s}  target")
        for name in FIGURES:
            ratio = mine[name] / ref[name] if ref[name] else float("nan")
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                verdict = f"< {target} {'met' if mine[name] < target else 'MISSED'}"
            print(f"{name:42s} {ref[name]:10.1f} {mine[name]:10.1f} {ratio:6.2f}  {verdict}")
        for kind in ("zoom", "pan"):
            layers = results[measured["key"]][-1][f"{kind} layers p95"]
            shown = ", ".join(f"{k} {v:.1f}" for k, v in sorted(layers.items()))
            print(f"  {kind}: Konva draw p95 per layer (last round): {shown}")
        print(f"  page: {results[measured['key']][-1]['profile']}")
        table[measured["key"]] = {"reference": ref, "measured": mine, "name": measured["name"]}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="visits of each page, alternating")
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny sizes, 1 round")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--polygons", type=int, default=300)
    parser.add_argument("--vertices", type=int, default=50)
    parser.add_argument("--wheel", type=int, default=30, help="wheel events each way")
    parser.add_argument("--pan", type=int, default=40, help="pan steps each way")
    parser.add_argument("--adds", type=int, default=3, help="boxes drawn per visit")
    parser.add_argument("--moves", type=int, default=20, help="pointer moves of a box per visit")
    parser.add_argument("--saves", type=int, default=6, help="single-change saves per visit")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.width, args.height = 1, 800, 600
        args.boxes, args.polygons, args.vertices = 40, 8, 12
        args.wheel, args.pan, args.adds, args.moves, args.saves = 6, 6, 1, 5, 2
    print(machine())
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # no ORM call once Playwright runs
    with Stack(keep=args.keep) as stack:
        started = time.perf_counter()
        world = build(args)
        print(f"data made in {time.perf_counter() - started:.0f} s")
        base = stack.start_daphne()
        watch = RowWatch(stack.dir / "db.sqlite3")
        from playwright.sync_api import sync_playwright

        from tests.browser.conftest import CHROMIUM_ARGS, chromium_path

        results: dict[str, list[dict]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
            )
            print(f"Chromium {browser.version}, headless, {' '.join(CHROMIUM_ARGS)}")
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
            context.set_default_timeout(30_000)
            context.add_cookies([{**world["cookie"], "url": base}])
            context.add_init_script(JS_INIT)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            bodies: list[str] = []
            page.on(
                "request",
                lambda r: (
                    bodies.append(r.post_data or "")
                    if r.method == "POST" and r.url.endswith("/draft/changes")
                    else None
                ),
            )
            for n in range(args.rounds):
                for pair in world["pairs"]:
                    for scene in pair:
                        figures = visit(page, base, scene, args, watch, bodies)
                        results.setdefault(scene["key"], []).append(figures)
                        print(f"round {n + 1} {scene['name']:>22s}: {brief(figures)}", flush=True)
            browser.close()
        if errors:
            raise SystemExit(f"the page raised: {errors}")
        table = report(world["pairs"], results)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; every save sent one change")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": machine(),
                        "rounds": args.rounds,
                        "figures": table,
                        "runs": results,
                    },
                    ensure_ascii=False,
                    indent=1,
                ),
                encoding="utf-8",
            )


if __name__ == "__main__":
    main()
