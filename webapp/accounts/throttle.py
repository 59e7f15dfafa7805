"""Sign-in throttling against password guessing, per account and per address.

Counters live in the shared cache (Redis in every real deployment) and count failures in
fixed windows with atomic increments, so parallel guesses from many processes all count.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """Return the caller's address as the server saw it (a proxy's header is not trusted)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _window() -> tuple[int, float]:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    now = time.time()
    bucket = int(now // window)
    return bucket, (bucket + 1) * window - now


def _keys(username: str, address: str, bucket: int) -> list[tuple[str, int]]:
    return [
        (
            f"login-fail:user:{username.strip().lower()}:{bucket}",
            settings.LOGIN_FAILURES_PER_ACCOUNT,
        ),
        (f"login-fail:addr:{address}:{bucket}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def seconds_locked(username: str, address: str) -> int:
    """Return how long sign-in stays refused for this account or address (0 if allowed)."""
    bucket, remaining = _window()
    for key, limit in _keys(username, address, bucket):
        if (cache.get(key) or 0) >= limit:
            return max(1, math.ceil(remaining))
    return 0


def record_failure(username: str, address: str) -> None:
    bucket, _remaining = _window()
    for key, _limit in _keys(username, address, bucket):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS + 5)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS + 5)


def record_success(username: str) -> None:
    """Clear the account's failures (an address keeps its count: one good login hides nothing)."""
    bucket, _remaining = _window()
    cache.delete(_keys(username, "", bucket)[0][0])
