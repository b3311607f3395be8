"""What a running service is configured with (the routes and the app factory both read it)."""

from __future__ import annotations

from dataclasses import dataclass

from whyrec.explain import Phraser


@dataclass(frozen=True)
class ServiceSettings:
    run_dir: str | None = None  # shown by /api/health
    max_body_bytes: int = 64 * 1024
    max_k: int = 100
    phraser: Phraser | None = None  # an LLM that may rephrase sentences, behind the grounding guard
    semantic_search: bool = True  # encode search queries with the run's text encoder
    warm_search: bool = False  # load that encoder in the background at startup
    profile_cache_size: int = 1024  # users whose interest profile is kept in memory
