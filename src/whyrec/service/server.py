"""``whyrec serve``: load a run, open its event store, run the app under uvicorn (one process or
several workers sharing the store)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from whyrec.errors import WhyrecError
from whyrec.training.controls import RankingControls

#: the environment variable holding the service key
API_KEY_ENV = "WHYREC_API_KEY"
#: how ``serve --workers N`` hands its configuration to the worker processes: the path of a JSON
#: file (a blocklist can be larger than an environment variable may be)
WORKER_CONFIG_ENV = "WHYREC_SERVE_CONFIG"
MIN_KEY_LENGTH = 16


def serve(run_dir: str | Path, db: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          llm: str | None = None, torch_threads: int | None = None, api_key_file: str | Path | None = None,
          workers: int = 1, cors_origins: tuple[str, ...] = (),
          limits: dict[str, int] | None = None, controls: RankingControls | None = None) -> None:  # fmt: skip
    """Serve the API and web page for ``run_dir`` until interrupted (blocking).

    ``db`` is any SQLAlchemy URL; by default a SQLite file ``events.db`` inside the run directory.
    ``llm`` (``smollm`` or an OpenAI-compatible base URL) lets an LLM rephrase the sentences,
    behind the grounding guard. ``torch_threads`` (default ``$WHYREC_TORCH_THREADS`` or 1) is
    the intra-op thread count per request, of torch and of numpy's BLAS alike: requests already
    run in parallel threads, and several threads per tiny forward pass only fight over the cores
    (10-100x slower on a busy 2-core box).

    The service key comes from ``api_key_file`` or ``$WHYREC_API_KEY``. Without one the service
    is open to every caller, which is allowed on a loopback host only. ``workers`` > 1 runs that
    many processes; every piece of state they answer from lives in the event store.
    ``limits`` sets ServiceSettings fields (``events_per_minute``, ``asks_per_minute``,
    ``user_event_cap``, ``user_event_window_seconds``, ``token_ttl_seconds``). ``controls`` are
    the service's ranking controls: its blocklists hold for every answer, its knobs are the
    defaults a request may change.
    """
    import uvicorn

    if workers < 1:
        raise WhyrecError(f"--workers must be at least 1, not {workers}")
    key = read_api_key(api_key_file)
    check_exposure(host, key)
    _check_port(host, port)
    config = {"run_dir": str(run_dir), "db": db, "llm": llm, "torch_threads": torch_threads,
              "api_key_file": str(api_key_file) if api_key_file else None,
              "cors_origins": list(cors_origins), "limits": dict(limits or {}), "shared_limits": workers > 1,
              "controls": (controls or RankingControls()).to_dict()}  # fmt: skip
    access = (
        "access needs the service key or a user token"
        if key
        else "OPEN for local use: no service key, anyone who can reach it can read and change every "
        f"user's data (set {API_KEY_ENV} to require credentials)"
    )
    print(f"whyrec: serving {run_dir} on http://{host}:{port}/ - {access}", flush=True)
    if controls is not None and not controls.plain:
        print(f"whyrec: ranking controls {_describe(controls)}", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if workers == 1:
            app, store = build_app(config, key)
            print(f"whyrec: {app.state.live.rec.model.name}, {app.state.live.rec.n_items:,} items, "
                  f"events in {store.dialect}; API docs at /docs", flush=True)  # fmt: skip
            try:
                uvicorn.run(app, host=host, port=port, log_level="info")
            finally:
                store.close()
        else:
            with tempfile.TemporaryDirectory(prefix="whyrec-serve-") as folder:
                handed = Path(folder) / "config.json"  # readable by this user only (0700 folder)
                handed.write_text(json.dumps(config), encoding="utf-8")
                os.environ[WORKER_CONFIG_ENV] = str(handed)
                print(f"whyrec: {workers} worker processes sharing the event store", flush=True)
                uvicorn.run("whyrec.service.server:worker_app", factory=True, host=host, port=port,
                            workers=workers, log_level="info")  # fmt: skip
    except OSError as exc:  # e.g. the port is taken
        raise WhyrecError(f"cannot serve on {host}:{port}: {exc}") from None


def build_app(config: dict[str, Any], key: str | None) -> tuple[Any, Any]:
    """The app and its store for one process, from the configuration ``serve`` was given."""
    from whyrec.events.store import EventStore, default_db_url
    from whyrec.explain import make_phraser
    from whyrec.service.app import create_app
    from whyrec.service.settings import ServiceSettings
    from whyrec.training.recommender import Recommender

    set_threads(config.get("torch_threads"))
    run_dir = config["run_dir"]
    recommender = Recommender.load(run_dir)
    llm = config.get("llm")
    try:
        controls = RankingControls(**(config.get("controls") or {}))
        settings = ServiceSettings(
            run_dir=str(run_dir), phraser=make_phraser(llm) if llm else None, warm_search=True,
            api_key=key, cors_origins=tuple(config.get("cors_origins") or ()), controls=controls,
            shared_limits=bool(config.get("shared_limits")), **(config.get("limits") or {}),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise WhyrecError(f"invalid service setting: {exc}") from None
    unknown = [i for i in controls.block_items if i not in recommender.items]
    if unknown:
        logging.getLogger("whyrec.service").warning(
            f"{len(unknown):,} blocked item id(s) are not in the catalogue, e.g. {unknown[0]!r} (they stay "
            "blocked if added later)"
        )
    store = EventStore(config.get("db") or default_db_url(run_dir))
    return create_app(recommender, store, settings), store


def _describe(controls: RankingControls) -> str:
    """The controls in one line, the blocklists by their size."""
    knobs = dataclasses.replace(controls, block_items=(), block_attributes=()).label()
    items, attributes = len(controls.block_items), len(controls.block_attributes)
    blocks = f"{items:,} blocked items, {attributes:,} blocked attributes"
    return blocks if knobs == "none" else f"{knobs}; {blocks}"


def worker_app() -> Any:
    """The app of one worker of ``serve --workers N`` (uvicorn calls this in each process)."""
    config = json.loads(Path(os.environ[WORKER_CONFIG_ENV]).read_text(encoding="utf-8"))
    app, _store = build_app(config, read_api_key(config.get("api_key_file")))
    return app


def read_api_key(api_key_file: str | Path | None) -> str | None:
    """The service key from ``api_key_file`` (first line) or ``$WHYREC_API_KEY``; None if neither."""
    if api_key_file:
        try:
            key = Path(api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WhyrecError(f"cannot read --api-key-file {api_key_file}: {exc.strerror or exc}") from None
        source = f"--api-key-file {api_key_file}"
    else:
        key = os.environ.get(API_KEY_ENV, "").strip()
        source = API_KEY_ENV
        if not key:
            return None
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
        hint = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        raise WhyrecError(f"the service key in {source} must be at least {MIN_KEY_LENGTH} characters "
                          f"without spaces (make one with: {hint})")  # fmt: skip
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, key: str | None) -> None:
    """Refuse to serve without a key on any host but loopback."""
    if key is None and not is_loopback(host):
        raise WhyrecError(f"refusing to serve on {host} without a service key: anyone on the network could "
                          f"read and change every user's data; set {API_KEY_ENV} or pass --api-key-file "
                          "FILE (or serve on 127.0.0.1)")  # fmt: skip


def _check_port(host: str, port: int) -> None:
    """Fail with one clear line, before loading anything, if the address is taken."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise WhyrecError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def set_threads(threads: int | None) -> None:
    """Run torch's and numpy's BLAS numerical work on THREADS threads each (default
    ``$WHYREC_TORCH_THREADS`` or 1). Both matter: a hybrid scores its parts side by side on the
    cores that this leaves over (``models.hybrid.run_parts``), and a BLAS that keeps a thread per
    core (OpenBLAS's spin after every call) would take those cores from them."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads is None:
        raw = os.environ.get("WHYREC_TORCH_THREADS", "1")
        if not raw.isdigit() or int(raw) < 1:
            raise WhyrecError(f"WHYREC_TORCH_THREADS must be a positive integer, not {raw!r}")
        threads = int(raw)
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")
