"""`python -m trainer.bench`: the trainer's loop against a bare PyTorch loop, in one process.

Prints images/s of each and their ratio (alternating runs, medians), for simple_cnn on the
digits and ResNet-18 at 32×32, and the time from spec to ≥97% test accuracy on the digits.
Uses scikit-learn's digits (installed with the web app; no download).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from trainer import data, fit, registry
from trainer.events import EventStream, ListReporter
from trainer.loops import classification
from trainer.spec import load_spec


def digits_on_disk(folder: Path) -> dict:
    """scikit-learn's 1,797 digits as PNG files with a stratified 80/20 train/test manifest."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255 / 16)).astype(np.uint8)
    train, test = train_test_split(
        np.arange(len(images)), test_size=0.2, stratify=digits.target, random_state=0
    )
    items = []
    for split, indices in (("train", train), ("test", test)):
        for i in indices:
            Image.fromarray(images[i], "L").save(folder / f"{i}.png")
            items.append(
                {"path": f"{i}.png", "label": int(digits.target[i]), "split": split, "id": int(i)}
            )
    return {"classes": [str(d) for d in range(10)], "items": items, "root": str(folder)}


def _bare_epoch(model, optimizer, images, labels, normalise, batch_size, generator) -> None:
    """The reference: what any PyTorch tutorial's loop does, nothing more."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(labels), generator=generator)
    for start in range(0, len(labels), batch_size):
        index = order[start : start + batch_size]
        loss = loss_fn(model(normalise(images[index])), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def throughput(name: str, data_spec: dict, size: int, rounds: int, batch: int) -> None:
    spec = load_spec({"model": name, "input_size": size, "batch_size": batch, "data": data_spec})
    prepared = fit.prepare(spec)
    trainer_speeds, bare_speeds = [], []
    for _ in range(rounds):
        for which in ("trainer", "bare"):
            torch.manual_seed(0)
            model = fit.build_model(prepared)
            optimizer = fit.make_optimizer(spec, model)
            normalise = data.Normalise(prepared.mean, prepared.std, prepared.device)
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            if which == "trainer":
                loop = fit.Loop(
                    model,
                    optimizer,
                    None,
                    nn.CrossEntropyLoss(),
                    normalise,
                    None,
                    batch,
                    EventStream(ListReporter()),
                    lambda: False,
                )
                fit.train_one_epoch(loop, prepared.train, 1, generator)
            else:
                _bare_epoch(
                    model,
                    optimizer,
                    prepared.train.images,
                    prepared.train.labels,
                    normalise,
                    batch,
                    generator,
                )
            speed = len(prepared.train) / (time.perf_counter() - start)
            (trainer_speeds if which == "trainer" else bare_speeds).append(speed)
    t, b = statistics.median(trainer_speeds), statistics.median(bare_speeds)
    print(
        f"{name} at {size}×{size}, batch {batch}: trainer {t:,.0f} img/s, bare loop "
        f"{b:,.0f} img/s, ratio {t / b:.3f} (target ≥ 0.95)"
    )


def time_to_accuracy(data_spec: dict, rounds: int) -> None:
    """From spec to `finished` with the default digits recipe; the test accuracy reached."""
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            spec = load_spec(
                {
                    "model": "simple_cnn",
                    "input_size": 32,
                    "epochs": 5,
                    "lr": 5e-3,
                    "schedule": "onecycle",
                    "batch_size": 64,
                    "data": data_spec,
                }
            )
            result = classification.run(spec, out, ListReporter())
            seconds = time.perf_counter() - start
        print(
            f"digits, simple_cnn recipe: test accuracy {result['test']['accuracy']:.4f} "
            f"in {seconds:.1f} s (targets ≥ 0.97, < 10 s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as folder:
        data_spec = digits_on_disk(Path(folder))
        print(
            f"device: {fit.pick_device('auto')}, threads: {torch.get_num_threads()}, "
            f"models: {len(registry.list_models())}"
        )
        throughput("simple_cnn", data_spec, 32, args.rounds, 64)
        throughput("resnet18", data_spec, 32, args.rounds, 64)
        time_to_accuracy(data_spec, args.rounds)


if __name__ == "__main__":
    main()
