"""A model's shapes and parameters layer by layer, computed by the trainer on a worker.

A web request never imports torch: it asks the `jobs.summarize` task and caches the answer,
since the same model, size and class count always give the same rows.
"""

import hashlib
import json

from django.core.cache import cache

SUMMARY_TIMEOUT = 10  # seconds a request waits for a worker's summary
SUMMARY_CACHE_SECONDS = 24 * 3600  # the same model, size and class count always gives the same


class SummaryUnavailable(Exception):
    """No worker answered in time: shapes are shown later, and checked again when the job runs."""


def model_summary(model, input_size: int | None, channels: int | None, classes: int) -> dict:
    """Rows of output shape and parameters per layer, computed by the trainer on a worker.

    A model past the limits (a bound, the size budget) is answered here, without a worker.
    Answers are cached: the same model at the same size always gives the same rows. Raises
    SummaryUnavailable when no worker answers within SUMMARY_TIMEOUT seconds.
    """
    from celery.exceptions import TimeoutError as CeleryTimeout

    from webapp.api.tasks import summarize
    from webapp.jobs import spec_check

    problem = spec_check.summary_problem(model, input_size, channels, classes)
    if problem is not None:  # never ask a worker for a model past the limits
        field, message = problem
        index = int(field.split(".")[1]) if field.startswith("model.") else None
        return {"ok": False, "field": field, "index": index, "message": message, "rows": []}
    args = {"model": model, "input_size": input_size, "channels": channels, "classes": classes}
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:32]
    key = f"model-summary:{digest}"
    answer = cache.get(key)
    if answer is None:
        try:
            answer = summarize.delay(**args).get(timeout=SUMMARY_TIMEOUT)
        except CeleryTimeout:
            raise SummaryUnavailable from None
        cache.set(key, answer, SUMMARY_CACHE_SECONDS)
    return answer
