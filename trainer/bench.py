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

from trainer import data, driver, loops, registry
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
    prepared = classification.prepare(spec, driver.pick_device(spec.device))
    trainer_speeds: list[float] = []
    bare_speeds: list[float] = []
    for _ in range(rounds):
        for which in ("trainer", "bare"):
            torch.manual_seed(0)
            model = classification.build_model(prepared)
            optimizer = driver.make_optimizer(spec, model, classification.head_parameters(model))
            normalise = data.Normalise(prepared.mean, prepared.std, prepared.device)
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            if which == "trainer":
                step = classification.make_step(prepared, model, None)
                training = driver.Training(
                    step, optimizer, None, EventStream(ListReporter()), lambda: False, batch
                )
                driver.train_one_epoch(classification, training, 1, generator)
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


DIGITS_RECIPE = {
    "model": "simple_cnn",
    "input_size": 32,
    "epochs": 5,
    "lr": 5e-3,
    "schedule": "onecycle",
    "batch_size": 64,
}


def _bare_recipe(data_spec: dict) -> float:
    """The same recipe as a bare loop: decode, train 5 epochs with one-cycle, test accuracy."""
    spec = load_spec({**DIGITS_RECIPE, "data": data_spec})
    prepared = classification.prepare(spec, driver.pick_device(spec.device))
    torch.manual_seed(0)
    model = classification.build_model(prepared)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    steps = -(-len(prepared.train) // spec.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=spec.lr, epochs=spec.epochs, steps_per_epoch=steps
    )
    normalise = data.Normalise(prepared.mean, prepared.std, prepared.device)
    loss_fn, generator = nn.CrossEntropyLoss(), torch.Generator().manual_seed(0)
    for _epoch in range(spec.epochs):
        model.train()
        order = torch.randperm(len(prepared.train), generator=generator)
        for start in range(0, len(order), spec.batch_size):
            index = order[start : start + spec.batch_size]
            x, y = normalise(prepared.train.images[index]), prepared.train.labels[index]
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        logits = model(normalise(prepared.test.images))
    return float(logits.argmax(1).eq(prepared.test.labels).float().mean())


def time_to_accuracy(data_spec: dict, rounds: int) -> None:
    """From spec to `finished` with the default digits recipe, beside the same bare loop."""
    ours, bare = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            spec = load_spec({**DIGITS_RECIPE, "data": data_spec})
            result = loops.run(spec, out, ListReporter())
            ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare_accuracy = _bare_recipe(data_spec)
        bare.append(time.perf_counter() - start)
        print(
            f"digits, simple_cnn recipe: trainer {result['test']['accuracy']:.4f} in "
            f"{ours[-1]:.1f} s | bare loop {bare_accuracy:.4f} in {bare[-1]:.1f} s"
        )
    t, b = statistics.median(ours), statistics.median(bare)
    print(
        f"time to >=97% on the digits: trainer {t:.1f} s, bare loop {b:.1f} s, ratio "
        f"{t / b:.2f} (targets: accuracy >= 0.97, < 10 s, ratio <= 1.2; the trainer also "
        f"checkpoints every epoch and writes safetensors, TorchScript, ONNX and a card)"
    )


def feature_extraction(data_spec: dict, folder: Path) -> None:
    """ResNet-18 at 224×224, 250 images, 25 epochs, frozen backbone, no augmentation.

    The backbone's weights come from a checkpoint (random here: the work is the same as with
    ImageNet weights, which are not downloaded), so the run needs nothing from the internet.
    """
    from trainer import export

    source = folder / "resnet18-source.safetensors"
    export.save_safetensors(
        registry.build("resnet18", num_classes=10, in_channels=3, input_size=224), source
    )
    items = data_spec["items"][:250]
    subset = {
        **data_spec,
        "items": [
            {**item, "split": "train" if i < 200 else "test"} for i, item in enumerate(items)
        ],
    }
    spec = load_spec(
        {
            "model": "resnet18",
            "input_size": 224,
            "channels": 3,
            "epochs": 25,
            "batch_size": 32,
            "data": subset,
            "transfer": {"source": str(source), "mode": "feature_extraction"},
        },
        local_files=True,
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        loops.run(spec, out, ListReporter())
        seconds = time.perf_counter() - start
    print(
        f"feature extraction, ResNet-18 224×224, 250 images, 25 epochs: {seconds:.1f} s "
        f"(target < 60 s)"
    )


def per_epoch_overhead(data_spec: dict, rounds: int, epochs: int = 20) -> None:
    """What the trainer adds per epoch (events, checkpoint, metrics) over a bare loop."""
    spec = load_spec(
        {
            "model": "logistic",
            "input_size": 8,
            "epochs": epochs,
            "data": {
                **data_spec,
                "items": [
                    {**item, "split": "val" if i % 5 == 0 else item["split"]}
                    for i, item in enumerate(data_spec["items"])
                ],
            },
        }
    )
    ours, bare = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            loops.run(spec, out, ListReporter())
            ours.append(time.perf_counter() - start)
        prepared = classification.prepare(spec, driver.pick_device(spec.device))
        start = time.perf_counter()
        model = classification.build_model(prepared)
        optimizer = driver.make_optimizer(spec, model, classification.head_parameters(model))
        normalise = data.Normalise(prepared.mean, prepared.std, prepared.device)
        generator = torch.Generator().manual_seed(0)
        for _epoch in range(epochs):
            _bare_epoch(
                model,
                optimizer,
                prepared.train.images,
                prepared.train.labels,
                normalise,
                spec.batch_size,
                generator,
            )
            with torch.no_grad():
                model.eval()
                model(normalise(prepared.val.images)).argmax(1).eq(prepared.val.labels).float()
        bare.append(time.perf_counter() - start)
    extra = (statistics.median(ours) - statistics.median(bare)) / epochs * 1000
    print(
        f"fixed cost per epoch (logistic, digits, {epochs} epochs, incl. decoding and "
        f"artifacts spread over the epochs): {extra:.1f} ms (target < 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as folder:
        data_spec = digits_on_disk(Path(folder))
        print(
            f"device: {driver.pick_device('auto')}, threads: {torch.get_num_threads()}, "
            f"models: {len(registry.list_models())}"
        )
        throughput("simple_cnn", data_spec, 32, args.rounds, 64)
        throughput("resnet18", data_spec, 32, args.rounds, 64)
        time_to_accuracy(data_spec, args.rounds)
        per_epoch_overhead(data_spec, args.rounds)
        feature_extraction(data_spec, Path(folder))


if __name__ == "__main__":
    main()
