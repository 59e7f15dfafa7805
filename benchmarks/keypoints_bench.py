"""Benchmark: the default pose model on 1,000 generated 64×64 stick figures (issue 12, keypoints).

    .venv/bin/python benchmarks/keypoints_bench.py [--images 1000] [--rounds 3] [--epochs 6]

Prints, in one process:
- the recipe's run through the trainer (spec → finished: decoding, epochs with validation
  PCK@0.1 and OKS AP, checkpoints, the test, safetensors/TorchScript/ONNX): val PCK after each
  epoch, the time to the first epoch at ≥ 0.8, and the test figures (target: ≥ 0.8 in under 3
  minutes on the 2-core server);
- the same recipe as a bare loop (decode, train, one evaluation at the end), and the ratio of
  the two times (target: the trainer within 1.2×);
- the images/s of the trainer's epoch and of a bare epoch of the same model and data,
  alternating the two, medians (target: ratio ≥ 1/1.2).
The figures (nine points: head, neck, hands, hip, knees, feet) are drawn here
(trainer.keypoints.figures, from a seed); nothing is downloaded.
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
from trainer.keypoints import figures  # noqa: E402
from trainer.loops import keypoints  # noqa: E402
from trainer.models.pose_net import heatmap_loss  # noqa: E402
from trainer.spec import KeypointsSpec, load_spec  # noqa: E402

RECIPE = {
    "kind": "keypoints",
    "model": "pose_unet",
    "input_size": 64,
    **KeypointsSpec.RECIPE,  # the kind's own recipe (AdamW, one-cycle, its rate, batch, epochs)
    "device": "cpu",
}
TARGET_PCK = 0.8


class Timeline:
    """A reporter that notes when each epoch's validation PCK arrived."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.epochs: list[tuple[int, float, float]] = []  # (epoch, seconds, val_pck)

    def __call__(self, event: dict) -> None:
        if event["kind"] == "epoch":
            data = event["data"]
            seconds = time.perf_counter() - self.start
            self.epochs.append((data["epoch"], seconds, data["val_pck"]))
            print(
                f"  epoch {data['epoch']:2d} at {seconds:6.1f} s: loss {data['train_loss']:.3f}, "
                f"val PCK@0.1 {data['val_pck']:.3f}, OKS AP {data['val_oks_ap']:.3f}",
                flush=True,
            )


def trainer_run(spec_dict: dict) -> tuple[float, float | None, dict]:
    """Spec → finished through the driver: (seconds, seconds to the target, test figures)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        timeline = Timeline(start)
        result = driver.run(load_spec(spec_dict), out, timeline)
        seconds = time.perf_counter() - start
    reached = next((s for _, s, value in timeline.epochs if value >= TARGET_PCK), None)
    return seconds, reached, result["test"]


def _bare_epoch(model, optimizer, scheduler, split, normalise, batch_size, sigma, generator):
    """The reference: what a PyTorch tutorial's loop does, nothing more."""
    model.train()
    order = torch.randperm(len(split), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        if len(index) == 1:
            continue
        loss = heatmap_loss(model(normalise(split.images[index])), split.points[index], sigma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def bare_run(spec_dict: dict) -> tuple[float, float]:
    """The same recipe as a bare loop: decode, train, evaluate the test split once."""
    start = time.perf_counter()
    spec = load_spec(spec_dict)
    p = keypoints.prepare(spec, torch.device("cpu"))
    torch.manual_seed(0)
    model = keypoints.build_model(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps = len(p.train) // spec.batch_size + 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=spec.lr, epochs=spec.epochs, steps_per_epoch=steps
    )
    step = keypoints.make_step(p, model, None)
    generator = torch.Generator().manual_seed(0)
    for _epoch in range(spec.epochs):
        _bare_epoch(
            model, optimizer, scheduler, p.train, step.extra["normalise"], spec.batch_size,
            spec.sigma, generator,
        )  # fmt: skip
    test = keypoints.evaluate(step, p.test)
    return time.perf_counter() - start, (test.pck or 0.0) if test else 0.0


def throughput(spec_dict: dict, rounds: int) -> None:
    """Images/s of the trainer's epoch and a bare epoch, same model and data, alternating."""
    spec = load_spec({**spec_dict, "schedule": "none"})
    p = keypoints.prepare(spec, torch.device("cpu"))
    ours, bare = [], []
    warm = keypoints.make_step(p, keypoints.build_model(p), None)  # oneDNN picks its kernels
    optimizer = torch.optim.AdamW(warm.model.parameters())
    _bare_epoch(warm.model, optimizer, _NoSchedule(), p.train, warm.extra["normalise"],
                spec.batch_size, spec.sigma, torch.Generator().manual_seed(0))  # fmt: skip
    for _ in range(rounds):
        for which in ("trainer", "bare"):
            torch.manual_seed(0)
            model = keypoints.build_model(p)
            step = keypoints.make_step(p, model, None)
            stream = EventStream(ListReporter())
            t = driver._training(keypoints, spec, step, stream, lambda: False)
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            if which == "trainer":
                driver.train_one_epoch(keypoints, t, 1, generator)
            else:
                _bare_epoch(
                    model, t.optimizer, _NoSchedule(), p.train, step.extra["normalise"],
                    spec.batch_size, spec.sigma, generator,
                )  # fmt: skip
            speed = len(p.train) / (time.perf_counter() - start)
            (ours if which == "trainer" else bare).append(speed)
    o, b = statistics.median(ours), statistics.median(bare)
    print(
        f"epoch throughput: trainer {o:.0f} img/s, bare loop {b:.0f} img/s, "
        f"ratio {o / b:.3f} (target ≥ {1 / 1.2:.2f})"
    )


class _NoSchedule:
    def step(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/keypoints_bench.py")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--lr", type=float, default=RECIPE["lr"])
    parser.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    parser.add_argument("--skip-bare", action="store_true", help="only the trainer's run")
    args = parser.parse_args()
    print(
        f"threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    recipe = {**RECIPE, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as folder:
        data = figures.write_figures(Path(folder), args.images, size=64, splits=(0.8, 0.1))
        spec_dict = {**recipe, "data": data}
        train, val = round(args.images * 0.8), round(args.images * 0.1)
        split = f"{train}/{val}/{args.images - train - val}"
        print(f"{args.images} figures 64×64 ({split}), recipe: {recipe}", flush=True)
        runs, bares = [], []
        for _ in range(args.rounds):
            seconds, reached, test = trainer_run(spec_dict)
            runs.append(seconds)
            print(
                f"trainer: {seconds:.1f} s spec → finished, val PCK@0.1 ≥ {TARGET_PCK} at "
                f"{reached if reached is None else round(reached, 1)} s, test PCK@0.1 "
                f"{test['pck']:.3f}, OKS AP {test['oks_ap']:.3f}, AP50 {test['oks_ap50']:.3f}",
                flush=True,
            )
            if args.skip_bare:
                continue
            seconds, pck = bare_run(spec_dict)
            bares.append(seconds)
            print(f"bare loop: {seconds:.1f} s, test PCK@0.1 {pck:.3f}", flush=True)
        if bares:
            t, b = statistics.median(runs), statistics.median(bares)
            print(f"whole run: trainer {t:.1f} s, bare {b:.1f} s, ratio {t / b:.2f} (≤ 1.2)")
            throughput(spec_dict, args.rounds)


if __name__ == "__main__":
    main()
