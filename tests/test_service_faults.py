"""Faults and processes: a server killed (SIGKILL) under 200 concurrent writers loses no
acknowledged event and stores none twice; ``serve --workers 2`` answers as one process does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from whyrec.service import EventStore, ServiceSettings, create_app  # noqa: E402
from whyrec.service.testing import free_port, running_server  # noqa: E402
from whyrec.training.recommender import Recommender  # noqa: E402

N_CLIENTS = 200
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    url = os.environ.get("WHYREC_TEST_PG_URL", "")
    if not url:
        pytest.skip("WHYREC_TEST_PG_URL is not set (source .ci/services.sh to get a PostgreSQL)")
    return url


class Server:
    """``whyrec serve`` in a child process (open, on loopback, limits off)."""

    def __init__(self, run_dir: Path, db: str, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1",
               "WHYREC_CACHE": str(run_dir.parent / "cache")}  # fmt: skip
        env.pop("WHYREC_API_KEY", None)
        command = [sys.executable, "-m", "whyrec.cli", "serve", "--run", str(run_dir), "--db", db,
                   "--port", str(self.port), "--workers", str(workers), "--events-per-minute", "0",
                   "--asks-per-minute", "0", "--user-event-cap", "0"]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"whyrec serve did not start: {self.first_line}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no flush, no goodbye."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_factory() -> Iterator[type[Server]]:
    started: list[Server] = []

    class Tracked(Server):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for server in started:
        server.stop()


async def hammer(url: str, crowd: str, items: list[str], kill_after: int,
                 kill: Callable[[], None]) -> tuple[list[tuple[int, float]], int]:  # fmt: skip
    """200 clients post rate events (each value unique) until the server dies; the server is
    killed once ``kill_after`` posts were acknowledged. Returns (event id, value) of every 201
    and the number of posts that got no answer."""
    acked: list[tuple[int, float]] = []
    failures = 0
    enough = asyncio.Event()

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal failures
        for seq in range(100_000):
            value = n * 100_000 + seq
            body = {"item_id": items[(n + seq) % len(items)], "type": "rate", "value": value}
            try:
                response = await http.post(f"/api/users/{crowd}-{n % 20}/events", json=body)
            except httpx.HTTPError:
                failures += 1
                return
            assert response.status_code == 201, response.text
            acked.append((response.json()["event"]["event_id"], float(value)))
            if len(acked) >= kill_after:
                enough.set()

    limits = httpx.Limits(max_connections=N_CLIENTS, max_keepalive_connections=N_CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as http:
        tasks = [asyncio.create_task(client(n, http)) for n in range(N_CLIENTS)]
        await asyncio.wait_for(enough.wait(), timeout=90)
        await asyncio.to_thread(kill)  # the clients keep posting while it dies
        await asyncio.gather(*tasks)
    return acked, failures


@pytest.mark.slow
def test_sigkill_under_200_writers_loses_no_acknowledged_event(
    run_dir: Path, db_url: str, server_factory: type[Server]
) -> None:
    rec = Recommender.load(run_dir)
    crowd = f"kill-{uuid.uuid4().hex[:8]}"  # PostgreSQL is shared between test runs
    server = server_factory(run_dir, db_url)
    assert "OPEN for local use" in server.first_line  # no key: the first line says so
    acked, failures = asyncio.run(hammer(server.url, crowd, list(rec.items.ids[:50]), 300, server.kill))
    assert len(acked) >= 300 and failures > 0  # it did die mid-stream

    # restart on the same database (in this process: a second child would only add start-up time)
    store = EventStore(db_url)
    try:
        with (
            running_server(create_app(rec, store, ServiceSettings())) as url,
            httpx.Client(base_url=url) as http,
        ):
            stored_n = sum(http.get(f"/api/users/{crowd}-{n}").json()["n_events"] for n in range(20))
        stored = [e for e in store.events() if e.user_id.startswith(f"{crowd}-")]
        by_id = {e.event_id: float(e.value) for e in stored}  # type: ignore[arg-type]
        values = [float(e.value) for e in stored]  # type: ignore[arg-type]
        assert all(by_id.get(event_id) == value for event_id, value in acked)  # every ack stored
        assert len(values) == len(set(values))  # none twice
        assert stored_n == len(stored) >= len(acked)  # the restarted server answers from all of them
        print(
            f"\nkill -9 ({store.dialect}): {len(acked)} acknowledged, {len(stored)} stored "
            f"(acknowledged and stored: {sum(i in by_id for i, _ in acked)}), {failures} posts unanswered"
        )
    finally:
        for n in range(20):
            store.delete_user(f"{crowd}-{n}")
        store.close()


@pytest.mark.slow
def test_two_workers_answer_like_one_process(
    run_dir: Path, tmp_path: Path, server_factory: type[Server]
) -> None:
    rec = Recommender.load(run_dir)
    db = f"sqlite:///{tmp_path / 'events.db'}"
    server = server_factory(run_dir, db, workers=2)
    users = sorted(rec.histories)[:3]
    item = next(i for i in rec.items.ids if i not in rec.histories[users[0]])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert (
            http.post(f"/api/users/{users[0]}/events", json={"item_id": item, "type": "like"}).status_code
            == 201
        )
        # state lives in the store: every worker answers from it, request after request
        served = {u: [http.get(f"/api/users/{u}/recommendations").json() for _ in range(4)] for u in users}
    store = EventStore(db)
    single = TestClient(create_app(rec, store, ServiceSettings()))
    try:
        for u in users:
            expected = single.get(f"/api/users/{u}/recommendations").json()
            assert all(answer == expected for answer in served[u]), u
    finally:
        store.close()
    if Path("/proc").exists():  # two worker processes did the serving
        children = [
            p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == server.process.pid
        ]
        assert len(children) >= 2


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
