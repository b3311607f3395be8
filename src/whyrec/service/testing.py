"""Helpers for testing and benchmarking the service: a tiny run, a real server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI


def build_tiny_run(run_dir: Path, model: str = "itemknn", encoder: str = "hashing-64") -> Path:
    """Train ``model`` on the bundled demo data into ``run_dir`` (about a second for itemknn with
    the hashing encoder); reuse it if it is already there."""
    from whyrec.training.pipeline import prepare, train_run

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        prepared = prepare("demo", encoder=encoder, progress=False)
        train_run(prepared, model, run_dir, progress=False)
    return run_dir


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields the base URL."""
    import uvicorn

    port = free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
