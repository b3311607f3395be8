"""``whyrec serve``: load a run, open its event store, run the app under uvicorn."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from whyrec.errors import WhyrecError


def serve(run_dir: str | Path, db: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          llm: str | None = None, torch_threads: int | None = None) -> None:  # fmt: skip
    """Serve the API and web page for ``run_dir`` until interrupted (blocking).

    ``db`` is any SQLAlchemy URL; by default a SQLite file ``events.db`` inside the run directory.
    ``llm`` (``smollm`` or an OpenAI-compatible base URL) lets an LLM rephrase the sentences,
    behind the grounding guard. ``torch_threads`` (default ``$WHYREC_TORCH_THREADS`` or 1) is
    the intra-op thread count per request: requests already run in parallel threads, and several
    threads per tiny forward pass only fight over the cores (10-100x slower on a busy 2-core box).
    """
    import uvicorn

    from whyrec.events.store import EventStore, default_db_url
    from whyrec.explain import make_phraser
    from whyrec.service.app import create_app
    from whyrec.service.settings import ServiceSettings
    from whyrec.training.recommender import Recommender

    _check_port(host, port)
    _set_torch_threads(torch_threads)
    recommender = Recommender.load(run_dir)
    store = EventStore(db or default_db_url(run_dir))
    settings = ServiceSettings(
        run_dir=str(run_dir), phraser=make_phraser(llm) if llm else None, warm_search=True
    )
    app = create_app(recommender, store, settings)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"whyrec: serving {run_dir} ({recommender.model.name}, {recommender.n_items:,} items) on "
          f"http://{host}:{port}/  (API docs at /docs; events in {store.dialect})", flush=True)  # fmt: skip
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    except OSError as exc:  # e.g. the port is taken
        raise WhyrecError(f"cannot serve on {host}:{port}: {exc}") from None
    finally:
        store.close()


def _check_port(host: str, port: int) -> None:
    """Fail with one clear line, before loading anything, if the address is taken."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise WhyrecError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def _set_torch_threads(threads: int | None) -> None:
    import os

    import torch

    if threads is None:
        raw = os.environ.get("WHYREC_TORCH_THREADS", "1")
        if not raw.isdigit() or int(raw) < 1:
            raise WhyrecError(f"WHYREC_TORCH_THREADS must be a positive integer, not {raw!r}")
        threads = int(raw)
    torch.set_num_threads(threads)
