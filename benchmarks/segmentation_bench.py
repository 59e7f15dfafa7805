"""Benchmark: the lecture's U-Net on 1,000 generated 128×128 shape images (issue 12, "Speed").

    .venv/bin/python benchmarks/segmentation_bench.py [--images 1000] [--rounds 3] [--epochs 10]
        [--input-size 128] [--width 16]

Prints, in one process:
- the recipe's run through the trainer (spec → finished: decoding, epochs with validation mIoU,
  checkpoints, the test, safetensors/TorchScript/ONNX): val mIoU after each epoch, the time to
  the first epoch at ≥ 0.8, and the test mIoU (target: ≥ 0.8 in under 6 minutes);
- the same recipe as a bare loop (decode, train, one evaluation at the end), alternating with the
  trainer's runs, and the ratio of the two medians (target: the trainer within 1.2×);
- the images/s of the trainer's epoch and of a bare epoch of the same model and data,
  alternating the two, medians (target: ratio ≥ 1/1.2).
The pictures are the segmentation sample's (circles, squares and triangles with their outlines,
trainer.segmentation.shapes, from a seed) at 128×128; nothing is downloaded. A quick look that
everything runs: --images 120 --epochs 1 --rounds 1.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer import driver  # noqa: E402
from trainer.events import EventStream, ListReporter  # noqa: E402
from trainer.loops import segmentation  # noqa: E402
from trainer.segmentation import shapes  # noqa: E402
from trainer.spec import SegmentationSpec, load_spec  # noqa: E402

RECIPE = {
    "kind": "segmentation",
    "model": "unet",
    "width": 16,
    "input_size": 128,
    **SegmentationSpec.RECIPE,  # the kind's own recipe (AdamW, one-cycle, its rate, batch, epochs)
    "device": "cpu",
}
TARGET_MIOU = 0.8


class Timeline:
    """A reporter that notes when each epoch's validation mIoU arrived."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.epochs: list[tuple[int, float, float]] = []  # (epoch, seconds, val_miou)

    def __call__(self, event: dict) -> None:
        if event["kind"] == "epoch":
            data = event["data"]
            seconds = time.perf_counter() - self.start
            miou = data["val_miou"] or 0.0
            self.epochs.append((data["epoch"], seconds, miou))
            print(
                f"  epoch {data['epoch']:2d} at {seconds:6.1f} s: loss {data['train_loss']:.3f} "
                f"(ce {data['train_ce']:.3f}, dice {data['train_dice']:.3f}), val mIoU "
                f"{miou:.3f}, pixel accuracy {data['val_pixel_accuracy']:.3f}",
                flush=True,
            )


def trainer_run(spec_dict: dict) -> tuple[float, float | None, dict]:
    """Spec → finished through the driver: (seconds, seconds to the target, test figures)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        timeline = Timeline(start)
        result = driver.run(load_spec(spec_dict), out, timeline)
        seconds = time.perf_counter() - start
    reached = next((s for _, s, value in timeline.epochs if value >= TARGET_MIOU), None)
    return seconds, reached, result["test"]


def _bare_epoch(model, optimizer, scheduler, split, normalise, batch_size, generator, weight):
    """The reference: what a PyTorch tutorial's loop does, nothing more."""
    model.train()
    order = torch.randperm(len(split), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        if len(index) == 1:
            continue
        logits = model(normalise(split.images[index]))
        loss = segmentation.segmentation_loss(logits, split.masks[index], weight)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def bare_run(spec_dict: dict) -> tuple[float, float]:
    """The same recipe as a bare loop: decode, train, evaluate the test split once."""
    start = time.perf_counter()
    spec = load_spec(spec_dict)
    p = segmentation.prepare(spec, torch.device("cpu"))
    torch.manual_seed(0)
    model = segmentation.build_model(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps = len(p.train) // spec.batch_size + 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=spec.lr, epochs=spec.epochs, steps_per_epoch=steps
    )
    step = segmentation.make_step(p, model, None)
    generator = torch.Generator().manual_seed(0)
    for _epoch in range(spec.epochs):
        _bare_epoch(
            model, optimizer, scheduler, p.train, step.extra["normalise"], spec.batch_size,
            generator, spec.dice_weight,
        )  # fmt: skip
    test = segmentation.evaluate(step, p.test)
    return time.perf_counter() - start, (test.miou or 0.0) if test else 0.0


def throughput(spec_dict: dict, rounds: int) -> None:
    """Images/s of the trainer's epoch and a bare epoch, same model and data, alternating."""
    spec = load_spec({**spec_dict, "schedule": "none"})
    p = segmentation.prepare(spec, torch.device("cpu"))
    ours, bare = [], []
    for _ in range(rounds):
        for which in ("trainer", "bare"):
            torch.manual_seed(0)
            model = segmentation.build_model(p)
            step = segmentation.make_step(p, model, None)
            stream = EventStream(ListReporter())
            t = driver._training(segmentation, spec, step, stream, lambda: False)
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            if which == "trainer":
                driver.train_one_epoch(segmentation, t, 1, generator)
            else:
                _bare_epoch(
                    model, t.optimizer, _NoSchedule(), p.train, step.extra["normalise"],
                    spec.batch_size, generator, spec.dice_weight,
                )  # fmt: skip
            speed = len(p.train) / (time.perf_counter() - start)
            (ours if which == "trainer" else bare).append(speed)
    o, b = statistics.median(ours), statistics.median(bare)
    print(
        f"epoch throughput: trainer {o:.1f} img/s, bare loop {b:.1f} img/s, "
        f"ratio {o / b:.3f} (target ≥ {1 / 1.2:.2f})"
    )


class _NoSchedule:
    def step(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/segmentation_bench.py")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--lr", type=float, default=RECIPE["lr"])
    parser.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    parser.add_argument("--input-size", type=int, default=RECIPE["input_size"])
    parser.add_argument("--width", type=int, default=RECIPE["width"])
    parser.add_argument("--skip-bare", action="store_true", help="only the trainer's run")
    args = parser.parse_args()
    print(
        f"threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    recipe = {
        **RECIPE,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "input_size": args.input_size,
        "width": args.width,
    }
    with tempfile.TemporaryDirectory() as folder:
        data = shapes.write_shapes(Path(folder), args.images, size=128, splits=(0.8, 0.1))
        spec_dict = {**recipe, "data": data}
        print(f"{args.images} images 128×128 (80/10/10 %), recipe: {recipe}", flush=True)
        runs, bares = [], []
        for _ in range(args.rounds):
            seconds, reached, test = trainer_run(spec_dict)
            runs.append(seconds)
            print(
                f"trainer: {seconds:.1f} s spec → finished, val mIoU ≥ {TARGET_MIOU} at "
                f"{reached if reached is None else round(reached, 1)} s, test mIoU "
                f"{test['miou']:.3f}, Dice {test['dice']:.3f}, pixel accuracy "
                f"{test['pixel_accuracy']:.3f}",
                flush=True,
            )
            if args.skip_bare:
                continue
            seconds, miou = bare_run(spec_dict)
            bares.append(seconds)
            print(f"bare loop: {seconds:.1f} s, test mIoU {miou:.3f}", flush=True)
        if bares:
            t, b = statistics.median(runs), statistics.median(bares)
            print(f"whole run: trainer {t:.1f} s, bare {b:.1f} s, ratio {t / b:.2f} (≤ 1.2)")
            throughput(spec_dict, args.rounds)


if __name__ == "__main__":
    main()
