"""What a running service is configured with (the routes and the app factory both read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from whyrec.explain import Phraser
from whyrec.training.controls import RankingControls


@dataclass(frozen=True)
class ServiceSettings:
    run_dir: str | None = None  # shown by /api/health
    max_body_bytes: int = 64 * 1024
    max_k: int = 100
    phraser: Phraser | None = None  # an LLM that may rephrase sentences, behind the grounding guard
    semantic_search: bool = True  # encode search queries with the run's text encoder
    warm_search: bool = False  # load that encoder in the background at startup
    profile_cache_size: int = 1024  # users whose interest profile is kept in memory
    # -- access control and limits (see docs/service.md) --
    api_key: str | None = None  # the service key; None: open to every caller (loopback only)
    token_ttl_seconds: int = 86_400  # default lifetime of a user token
    events_per_minute: int = 120  # POST events per credential per minute (0: no limit)
    asks_per_minute: int = 30  # POST ask per credential per minute (0: no limit)
    shared_limits: bool = False  # count those in the event store, shared by several workers
    user_event_cap: int = 1_000  # events one user may store per window (0: no cap)
    user_event_window_seconds: int = 3_600
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser; none by default
    store_retry_after_seconds: int = 5  # Retry-After of a 503 while the event store is unavailable
    # the deployment's ranking controls: its blocklists hold for every list the service shows, its
    # knobs are the defaults a request may change (see docs/ranking-controls.md)
    controls: RankingControls = field(default_factory=RankingControls)

    def __post_init__(self) -> None:
        if self.api_key is not None and len(self.api_key) < 16:
            raise ValueError("the service key must be at least 16 characters")
        for name in ("events_per_minute", "asks_per_minute", "user_event_cap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("token_ttl_seconds", "user_event_window_seconds", "store_retry_after_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if "*" in self.cors_origins:
            raise ValueError("CORS origins must be listed one by one; '*' would open the API to every site")
