"""Rate limits: requests per credential per minute on the costly or writing routes, and the
events one user may store per window (counted in the store). Over a limit: 429 with ``Retry-After``.

One worker counts requests in memory (:class:`Limiter`, an exact sliding window). Several workers
(``serve --workers N``) count them in the event store (:class:`SharedLimiter`), so a credential
gets its limit once, not once per worker: a sliding-window counter over whole minutes, the
previous minute's count weighted by the share of it still inside the last 60 seconds.

A route adopts a limit as a dependency: ``dependencies=[Depends(rate_limit("ask"))]``; the
limits per minute come from ``request.app.state.limiter`` (set by ``create_app``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Request

from whyrec.errors import WhyrecError
from whyrec.events.store import EventStore
from whyrec.service.auth import Credential, credential

WINDOW_SECONDS = 60.0


class RateLimitedError(WhyrecError):
    """Too many requests; ``retry_after`` says when the next one is accepted (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class Limiter:
    """Sliding-window counters per (bucket, credential). ``per_minute[bucket] = 0`` disables one."""

    def __init__(self, per_minute: Mapping[str, int], max_keys: int = 100_000) -> None:
        self.per_minute = dict(per_minute)
        self.max_keys = max_keys
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, key: str, now: float | None = None) -> None:
        limit = self.per_minute.get(bucket, 0)
        if limit <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault((bucket, key), deque())
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= limit:
                raise RateLimitedError(
                    f"too many {bucket} requests: at most {limit} a minute per credential",
                    retry_after=hits[0] + WINDOW_SECONDS - now,
                )
            hits.append(now)
            if len(self._hits) > self.max_keys:  # drop idle counters
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - WINDOW_SECONDS}


class SharedLimiter:
    """Counters per (bucket, credential, minute) in the event store, shared by every worker."""

    def __init__(self, store: EventStore, per_minute: Mapping[str, int]) -> None:
        self.store = store
        self.per_minute = dict(per_minute)

    def hit(self, bucket: str, key: str, now: float | None = None) -> None:
        limit = self.per_minute.get(bucket, 0)
        if limit <= 0:
            return
        now = time.time() if now is None else now  # wall clock: the same in every worker
        window = int(now // WINDOW_SECONDS)
        elapsed = now / WINDOW_SECONDS - window  # share of this minute gone, 0..1

        def allowed(current: int, previous: int) -> bool:
            return previous * (1.0 - elapsed) + current < limit

        current, previous, counted = self.store.count_request(bucket, key, window, allowed)
        if not counted:
            raise RateLimitedError(
                f"too many {bucket} requests: at most {limit} a minute per credential",
                retry_after=shared_retry_after(current, previous, elapsed, limit),
            )


def shared_retry_after(current: int, previous: int, elapsed: float, limit: int) -> float:
    """Seconds until ``previous * (1 - elapsed) + current`` (the estimate of the last minute's
    requests) falls below ``limit`` with no new requests: within this minute, as the previous
    minute's share shrinks, or else in the next one, where ``current`` becomes the previous count."""
    if current < limit:
        needed = 1.0 - (limit - current) / previous  # previous > 0, or the request was allowed
        return max(needed - elapsed, 0.0) * WINDOW_SECONDS
    return (1.0 - elapsed + max(0.0, 1.0 - limit / current)) * WINDOW_SECONDS


def rate_limit(bucket: str) -> Callable[..., Credential]:
    """A dependency counting each request against ``bucket`` for the caller's credential."""

    def dependency(request: Request, found: Annotated[Credential, Depends(credential)]) -> Credential:
        limiter: Limiter | SharedLimiter = request.app.state.limiter
        limiter.hit(bucket, found.key)
        return found

    dependency.__name__ = f"rate_limit_{bucket}"
    return dependency
