"""Rate limits: requests per credential per minute on the costly or writing routes (a sliding
window kept in this process), and the events one user may store per window (counted in the
store, so every worker agrees). Over a limit: 429 with ``Retry-After``.

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


def rate_limit(bucket: str) -> Callable[..., Credential]:
    """A dependency counting each request against ``bucket`` for the caller's credential."""

    def dependency(request: Request, found: Annotated[Credential, Depends(credential)]) -> Credential:
        limiter: Limiter = request.app.state.limiter
        limiter.hit(bucket, found.key)
        return found

    dependency.__name__ = f"rate_limit_{bucket}"
    return dependency
