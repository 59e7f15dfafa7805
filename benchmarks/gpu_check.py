"""GPU check: detectors, segmenters and Keypoint R-CNN train on a CUDA device as the driver runs
them, and how fast.

    .venv/bin/python benchmarks/gpu_check.py [--models centernet_tiny fasterrcnn_resnet50_fpn]
                                             [--kinds detection segmentation keypoints] [--all]
                                             [--batch 16] [--steps 10] [--warmup 3] [--size N]

For a lent GPU machine or a GPU worker; on a machine without CUDA it says so and exits 0. Each
model trains from scratch for a few steps on synthetic images (bright rectangles: their boxes,
their masks, a class map, three keypoints in each) the way trainer/driver.py does on a GPU:
uint8 batches in pinned memory copied without blocking, normalised on the device, the model in
channels_last, autocast (bf16 where supported, else fp16 with a GradScaler), losses checked to
be finite (and fp32 for torchvision's). Then the model's own inference under autocast must
keep its contract: detect()'s boxes (and Keypoint R-CNN's keypoints), Mask R-CNN's segment()
masks, a semantic segmenter's logits. Prints images/s per model (after warm-up steps), and
exits 1 if any model failed. `--kinds` checks every torchvision model of those kinds (DeepLabV3,
FCN, LR-ASPP, Mask R-CNN, Keypoint R-CNN, the detectors); `--all` those of all three kinds and
centernet_tiny and unet. `--cpu` is a dry run of the same path on the CPU (bf16 autocast); give
it a small --size and --batch, e.g. `--cpu --kinds segmentation --size 64 --batch 2 --warmup 0
--steps 1`.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer import catalog, registry  # noqa: E402
from trainer.driver import amp_dtype  # noqa: E402
from trainer.loops.segmentation import segmentation_loss  # noqa: E402

CLASSES = 3
KEYPOINTS = 3  # per rectangle: its centre and two corners' midpoints (a Keypoint R-CNN "person")
KINDS = ("detection", "segmentation", "keypoints")
TORCHVISION = {e.name for kind in KINDS for e in catalog.models(kind) if e.family == "torchvision"}
OWN = ("centernet_tiny", "unet")  # the lecture's models this script can train too (not pose_unet)
# What each kind's targets carry (the rest of a synthetic target is left out).
TARGET_KEYS = {
    "detection": ("boxes", "labels"),
    "segmentation": ("boxes", "labels", "masks"),
    "keypoints": ("boxes", "labels", "keypoints"),
}


def synthetic(count: int, size: int, generator: torch.Generator, pin: bool):
    """`count` uint8 images (pinned for a GPU), 1-3 filled rectangles each, with their boxes,
    masks (n, S, S), keypoints (n, KEYPOINTS, 3) and the image's class map (S, S), 0 the
    background."""
    images = torch.randint(0, 60, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    targets = []
    for image in images:
        n = int(torch.randint(1, 4, (1,), generator=generator))
        wh = torch.randint(size // 8, size // 2, (n, 2), generator=generator)
        xy = (torch.rand(n, 2, generator=generator) * (size - wh)).long()
        boxes = torch.cat([xy, xy + wh], 1).float()  # (n, 4) xyxy, input pixels
        labels = torch.randint(0, CLASSES, (n,), generator=generator)
        masks = torch.zeros(n, size, size, dtype=torch.uint8)
        classes = torch.zeros(size, size, dtype=torch.int64)
        for i, ((x1, y1, x2, y2), label) in enumerate(
            zip(boxes.long().tolist(), labels.tolist(), strict=True)
        ):
            image[label, y1:y2, x1:x2] = 230  # the class is the rectangle's colour
            masks[i, y1:y2, x1:x2] = 1
            classes[y1:y2, x1:x2] = label + 1  # a later rectangle covers an earlier one
        x1, y1, x2, y2 = boxes.unbind(1)
        middle = ((x1 + x2) / 2, (y1 + y2) / 2)
        points = torch.stack(
            [
                torch.stack([middle[0], middle[1]], 1),
                torch.stack([x1 + 1, middle[1]], 1),
                torch.stack([x2 - 1, middle[1]], 1),
            ],
            1,
        )  # (n, KEYPOINTS, 2)
        keypoints = torch.cat([points, torch.full((n, KEYPOINTS, 1), 2.0)], 2)  # v = 2: visible
        targets.append(
            {"boxes": boxes, "labels": labels, "masks": masks, "keypoints": keypoints,
             "classes": classes}
        )  # fmt: skip
    return (images.pin_memory() if pin else images), targets


def check(
    name: str, *, batch: int, steps: int, warmup: int, size: int | None, device: torch.device
) -> float:
    """Train `name` for `warmup` + `steps` steps; images/s of the timed ones."""
    entry = catalog.get(name)
    if entry.kind not in KINDS or name == "pose_unet":
        raise ValueError(f"{name} is not one of the models this script checks")
    side = size or entry.default_input_size
    generator = torch.Generator().manual_seed(0)
    images, targets = synthetic(batch * 4, side, generator, pin=device.type == "cuda")
    outputs = KEYPOINTS if entry.kind == "keypoints" else CLASSES
    model = registry.build(name, num_classes=outputs, in_channels=3, input_size=side)
    model = model.to(device).to(memory_format=torch.channels_last)
    semantic = entry.kind == "segmentation" and not hasattr(model, "losses")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    # The driver's choice on a GPU; bf16 autocast on the CPU for a dry run of the same path.
    dtype = amp_dtype("auto", device) if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    mean = torch.tensor([30.0, 30.0, 30.0], device=device).view(1, 3, 1, 1)
    std = torch.tensor([60.0, 60.0, 60.0], device=device).view(1, 3, 1, 1)

    def inputs(start: int):
        x = images[start : start + batch].to(device, non_blocking=True)  # (B, 3, S, S) uint8
        x = ((x.float() - mean) / std).contiguous(memory_format=torch.channels_last)
        keys = TARGET_KEYS[entry.kind] + (("classes",) if semantic else ())
        t = [
            {key: target[key].to(device, non_blocking=True) for key in keys}
            for target in targets[start : start + batch]
        ]
        return x, t

    model.train()
    losses: dict[str, torch.Tensor] = {}
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    began = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            began = time.perf_counter()
        x, t = inputs((step % 4) * batch)
        with autocast:
            if semantic:  # as the segmentation loop: logits under autocast, the loss in fp32
                logits = model(x)  # (B, CLASSES + 1, S, S)
            else:
                losses = model.losses(x, t)
        if semantic:
            classes = torch.stack([one["classes"] for one in t])  # (B, S, S)
            losses = segmentation_loss(logits, classes, dice_weight=1.0)
        if not all(torch.isfinite(value) for value in losses.values()):
            raise RuntimeError(f"a loss is not finite: {losses}")
        if name in TORCHVISION and any(v.dtype != torch.float32 for v in losses.values()):
            raise RuntimeError(f"torchvision's losses should come out in fp32: {losses}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(losses["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            losses["loss"].backward()
            optimizer.step()
    sync()
    rate = steps * batch / (time.perf_counter() - began)

    model.eval()
    x, _ = inputs(0)
    with torch.no_grad(), autocast:
        if semantic:
            logits = model(x)
            assert logits.shape == (len(x), CLASSES + 1, side, side), logits.shape
        elif entry.kind == "segmentation":  # Mask R-CNN
            for one in model.segment(x, score_threshold=0.0, max_detections=10):
                k = len(one["scores"])
                assert one["masks"].shape == (k, side, side) and k <= 10, one["masks"].shape
                assert one["labels"].dtype == torch.int64 and bool((one["labels"] < CLASSES).all())
        else:
            for one in model.detect(x, score_threshold=0.0, max_detections=10):
                k = len(one["scores"])
                assert one["boxes"].shape == (k, 4) and k <= 10, one["boxes"].shape
                assert one["labels"].dtype == torch.int64 and bool((one["labels"] < CLASSES).all())
                if entry.kind == "keypoints":
                    assert one["keypoints"].shape == (k, KEYPOINTS, 3), one["keypoints"].shape
    parts = ", ".join(f"{key} {float(value.detach()):.3f}" for key, value in losses.items())
    print(
        f"{name:36s} {side:4d}px  batch {batch:3d}  {rate:8.1f} images/s  "
        f"{str(dtype).replace('torch.', '')}  loss dtype {losses['loss'].dtype}  last: {parts}",
        flush=True,
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["centernet_tiny", "fasterrcnn_resnet50_fpn"]
    )
    parser.add_argument(
        "--kinds", nargs="+", choices=KINDS, help="every torchvision model of these kinds"
    )
    parser.add_argument(
        "--all", action="store_true", help="every torchvision model of the three kinds, and ours"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed")
    parser.add_argument("--size", type=int, default=None, help="input side (the model's default)")
    parser.add_argument("--cpu", action="store_true", help="a dry run of the same path on the CPU")
    args = parser.parse_args()
    if args.cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print("No CUDA device here: nothing to check (run this on a GPU worker).")
        return 0
    kinds = KINDS if args.all else args.kinds
    if kinds:
        names = [n for kind in kinds for n in catalog.names(kind) if n in TORCHVISION]
        names = [*(n for n in OWN if args.all), *names]
    else:
        names = args.models
    failed = []
    for name in names:
        try:
            check(
                name,
                batch=args.batch,
                steps=args.steps,
                warmup=args.warmup,
                size=args.size,
                device=device,
            )
        except Exception as exc:  # report every model, then fail
            failed.append(name)
            print(f"{name:36s} FAILED: {type(exc).__name__}: {exc}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
