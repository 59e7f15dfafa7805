"""Celery tasks behind API answers that need torch: they run on a worker, never in a request."""

from celery import shared_task

MAX_ROWS = 400  # a torchvision model has a few hundred leaf modules; the page lists them all


@shared_task(name="jobs.summarize")
def summarize(model, input_size: int | None, channels: int | None, classes: int) -> dict:
    """The trainer's own summary of a model name or layer list: output shape and parameters
    after each layer, or the layer that does not fit and why ({"ok": False, "field", ...})."""
    from trainer.memory import OUT_OF_MEMORY, out_of_memory

    try:
        return _summary(model, input_size, channels, classes)
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        # Too large to build here: the web side says so in the reader's language (a 422).
        return {"ok": False, "field": "model", "message": OUT_OF_MEMORY, "too_large": True}


def _summary(model, input_size: int | None, channels: int | None, classes: int) -> dict:
    from trainer import registry  # imports torch: workers only

    if isinstance(model, list):
        return _layers_summary(registry, model, input_size, channels, classes)
    try:
        info = registry.get_info(model)
    except KeyError as exc:
        return {"ok": False, "field": "model", "message": str(exc.args[0]), "rows": []}
    size = input_size or info.default_input_size
    channels = channels or info.default_channels
    try:
        built = registry.build(model, num_classes=classes, in_channels=channels, input_size=size)
    except ValueError as exc:
        return {"ok": False, "field": "input_size", "message": str(exc), "rows": []}
    rows = registry.summary(built, (channels, size, size))
    return {
        "ok": True,
        "input": [channels, size, size],
        "parameters": registry.parameter_count(built),
        "rows": [
            {"layer": row.layer, "shape": list(row.output_shape), "params": row.params}
            for row in rows[:MAX_ROWS]
        ],
        "truncated": len(rows) > MAX_ROWS,
    }


def _layers_summary(registry, layers: list, input_size, channels, classes) -> dict:
    from trainer.registry import ShapeError

    size = input_size or 32  # what trainer/fit.py gives a layer list
    channels = channels or 1
    shape_in = [channels, size, size]
    try:
        built = registry.build_layers(
            layers, num_classes=classes, in_channels=channels, input_size=size
        )
    except ShapeError as exc:
        prefix = _layer_rows(registry, layers[: exc.index], channels, size) if exc.index else []
        return {
            "ok": False,
            "field": f"model.{exc.index}" if exc.index < len(layers) else "model",
            "index": exc.index,
            "message": exc.message,
            "input": shape_in,
            "rows": prefix,
        }
    except ValueError as exc:
        return {"ok": False, "field": "model", "message": str(exc), "input": shape_in, "rows": []}
    rows = _rows_by_layer(registry.summary(built, (channels, size, size)), layers)
    return {
        "ok": True,
        "input": shape_in,
        "parameters": registry.parameter_count(built),
        "rows": rows,
    }


def _layer_rows(registry, layers: list, channels: int, size: int) -> list[dict]:
    """Rows of a list that fits (up to a layer that does not), measured before the output."""
    # Flatten takes any shape, so the prefix always builds; its and the output's rows are cut.
    built = registry.build_layers(
        [*layers, {"type": "Flatten"}], num_classes=1, in_channels=channels, input_size=size
    )
    return _rows_by_layer(registry.summary(built, (channels, size, size)), layers)[: len(layers)]


def _rows_by_layer(rows: list, layers: list) -> list[dict]:
    """Module rows grouped back into the student's layers (Dense + its activation is one)."""
    grouped, position = [], 0
    for index, layer in enumerate(layers):
        modules = rows[position : position + _module_count(layer)]
        position += len(modules)
        grouped.append(
            {
                "index": index,
                "type": layer["type"],
                "shape": list(modules[-1].output_shape),
                "params": sum(row.params for row in modules),
            }
        )
    rest = rows[position:]  # the output layer (and a closing Flatten, cut by the caller)
    for row in rest:
        grouped.append(
            {
                "index": len(grouped),
                "type": "output",
                "shape": list(row.output_shape),
                "params": row.params,
            }
        )
    return grouped


def _module_count(layer: dict) -> int:
    """How many modules trainer/models/layers.py makes of one layer: an activation adds one."""
    if str(layer.get("type", "")).lower() in ("dense", "conv2d"):
        activation = layer.get("activation")
        return 1 if activation is None or str(activation).lower() in ("", "none", "linear") else 2
    return 1
