"""`python -m trainer run spec.json --out DIR | models | summary spec.json`."""

import argparse
import json
import sys

from torch import nn

from trainer import registry
from trainer.events import JsonLinesReporter
from trainer.spec import SpecError, load_spec


def _run(args) -> int:
    from trainer import loops

    spec = load_spec(args.spec, local_files=True)  # the operator's own files
    reporter = JsonLinesReporter(sys.stdout)
    try:
        loops.run(spec, args.out, reporter, resume=args.resume)
    except Exception:  # noqa: BLE001 - the failed event already told the reason
        return 1
    return 0


def _models(args) -> int:
    for info in registry.list_models():
        print(f"{info.name:22} {info.kind:15} {info.family:11} {info.describe(args.lang)}")
    return 0


def _summary(args) -> int:
    spec = load_spec(args.spec, local_files=True)  # the operator's own files
    info = registry.get_info(spec.model) if isinstance(spec.model, str) else None
    size = spec.input_size or (info.default_input_size if info else 32)
    channels = spec.channels or (info.default_channels if info else 1)
    count = len(spec.data.classes)
    model: nn.Module
    if isinstance(spec.model, list):
        model = registry.build_layers(
            spec.layers, num_classes=count, in_channels=channels, input_size=size
        )
    else:
        model = registry.build(spec.model, num_classes=count, in_channels=channels, input_size=size)
    rows = registry.summary(model, (channels, size, size))
    print(f"{'layer':32} {'output shape':22} {'params':>10}")
    for row in rows:
        print(f"{row.layer:32} {str(tuple(row.output_shape)):22} {row.params:>10,}")
    print(f"total parameters: {registry.parameter_count(model):,}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train as the spec says; events as JSON lines")
    run.add_argument("spec")
    run.add_argument("--out", required=True, help="folder for checkpoints and artifacts")
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    models = sub.add_parser("models", help="list the model registry")
    models.add_argument("--lang", default="en", choices=["en", "ja"])
    summary = sub.add_parser("summary", help="layer, output shape and parameters of a spec's model")
    summary.add_argument("spec")
    args = parser.parse_args(argv)
    try:
        return {"run": _run, "models": _models, "summary": _summary}[args.command](args)
    except SpecError as exc:
        print(json.dumps({"error": str(exc), "errors": exc.errors}, ensure_ascii=False))
        return 2
