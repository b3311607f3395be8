"""Load on ``whyrec serve --workers N`` over loopback: a bounded async client sends a mix of
recommendations, explanations, events and questions for a fixed time, then stops by itself.
Reports throughput, p50/p95/p99 per kind, errors, and lost events (acknowledged events missing
from the store afterwards), and writes JSON.

    python -m bench.load --run runs/demo [--db URL] [--workers 2] [--seconds 60] [--clients 16]
                         [--auth key|token|none] [--json bench/results/load-demo-sqlite.json]

``--auth token`` (default) starts the service with a service key and has every simulated user call
with a token of their own (the path a browser takes); ``key`` calls with the service key;
``none`` serves open (loopback only), for the cost of authentication. Rate limits are switched
off so that the figures measure the service, not the limiter.

    python -m bench.load --run runs/demo --auth-cost 300 [--json ...]

measures the cost of authentication alone, in process: the same requests (the user, then their
recommendations) sent alternately with a user token to a keyed app and without one to an open
app, so that load from elsewhere on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, write_result

MIX = {"recommend": 0.4, "explain": 0.2, "event": 0.3, "ask": 0.1}
QUESTIONS = ["what are my interests?", "why did you recommend {title}?", "为什么推荐{title}?"]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {"n": 0}
    ms = sorted(s * 1000 for s in samples_s)

    def pick(q: float) -> float:
        return round(ms[min(len(ms) - 1, round(q * (len(ms) - 1)))], 2)

    return {"n": len(ms), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


class Service:
    """``whyrec serve`` in a child process on a free loopback port; stopped on exit."""

    def __init__(self, run: Path, db: str, workers: int, key: str | None) -> None:
        from whyrec.service.testing import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
        env.pop("WHYREC_API_KEY", None)
        if key:
            env["WHYREC_API_KEY"] = key
        command = [sys.executable, "-m", "whyrec.cli", "serve", "--run", str(run), "--db", db, "--host",
                   "127.0.0.1", "--port", str(self.port), "--workers", str(workers), "--events-per-minute",
                   "0", "--asks-per-minute", "0", "--user-event-cap", "0"]  # fmt: skip
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet, start_new_session=True)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"whyrec serve exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("whyrec serve did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


async def drive(url: str, users: list[str], headers: dict[str, dict[str, str]], items: list[str],
                titles: dict[str, str], seconds: float, clients: int,
                seed: int) -> dict[str, Any]:  # fmt: skip
    """``clients`` loops, each picking a user and a request kind by MIX, until ``seconds`` pass."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    error_samples: list[str] = []
    acked: list[tuple[str, int, float]] = []
    recommended: dict[str, list[str]] = {}
    kinds, weights = list(MIX), list(MIX.values())
    stop_at = time.monotonic() + seconds

    async def one(http: httpx.AsyncClient, rng: random.Random, n: int) -> None:
        seq = 0
        while time.monotonic() < stop_at:
            user = rng.choice(users)
            kind = rng.choices(kinds, weights)[0]
            seq += 1
            ok_codes = {200}
            if kind == "recommend":
                request = http.build_request("GET", f"/api/users/{user}/recommendations", params={"k": 10})
            elif kind == "explain":
                item = rng.choice(recommended.get(user) or items)
                request = http.build_request("GET", f"/api/users/{user}/recommendations/{item}/explanation")
                ok_codes = {200, 409}  # 409: the user took that item meanwhile
            elif kind == "event":
                value = float(n * 1_000_000 + seq)  # unique: lets the store be checked for every ack
                body = {"item_id": rng.choice(items), "type": "rate", "value": value}
                request = http.build_request("POST", f"/api/users/{user}/events", json=body)
                ok_codes = {201}
            else:
                title = titles.get(rng.choice(recommended.get(user) or items), "")
                question = rng.choice(QUESTIONS).format(title=title)
                request = http.build_request("POST", f"/api/users/{user}/ask", json={"question": question})
            request.headers.update(headers[user])
            start = time.perf_counter()
            try:
                response = await http.send(request)
            except httpx.HTTPError as exc:
                errors[kind] += 1
                error_samples.append(f"{kind}: {type(exc).__name__}")
                continue
            latencies[kind].append(time.perf_counter() - start)
            if response.status_code not in ok_codes:
                errors[kind] += 1
                if len(error_samples) < 20:
                    error_samples.append(f"{kind} {response.status_code}: {response.text[:200]}")
                continue
            if kind == "event":
                acked.append((user, int(response.json()["event"]["event_id"]), value))
            elif kind == "recommend":
                recommended[user] = [r["item_id"] for r in response.json()["recommendations"]]

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(one(http, random.Random(seed + n), n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "errors": errors, "error_samples": error_samples,
            "acked": acked}  # fmt: skip


def auth_cost(run: Path, requests: int, seed: int) -> dict[str, Any]:
    """p50/p95 of the same requests with a user token (keyed app) and without (open app)."""
    from fastapi.testclient import TestClient

    from whyrec.events import EventStore
    from whyrec.service import ServiceSettings, create_app
    from whyrec.training.recommender import Recommender

    rec = Recommender.load(run)
    users = random.Random(seed).sample(sorted(rec.histories), min(50, len(rec.histories)))
    key = secrets.token_urlsafe(32)
    scratch = tempfile.TemporaryDirectory(prefix="whyrec-auth-cost-")
    store = EventStore(f"sqlite:///{Path(scratch.name) / 'events.db'}")
    keyed = TestClient(create_app(rec, store, ServiceSettings(api_key=key)))
    open_ = TestClient(create_app(rec, store, ServiceSettings()))
    admin = {"Authorization": f"Bearer {key}"}
    issued = {u: keyed.post(f"/api/users/{u}/token", headers=admin).json()["token"] for u in users}
    tokens = {u: {"Authorization": f"Bearer {token}"} for u, token in issued.items()}
    samples: dict[str, dict[str, list[float]]] = {p: {"token": [], "open": []} for p in ("user", "recommend")}
    for n in range(requests):
        user = users[n % len(users)]
        for part, path in (
            ("user", f"/api/users/{user}"),
            ("recommend", f"/api/users/{user}/recommendations"),
        ):
            for who, client, headers in (("token", keyed, tokens[user]), ("open", open_, {}))[
                :: 1 - 2 * (n % 2)
            ]:
                start = time.perf_counter()
                response = client.get(path, headers=headers)
                samples[part][who].append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
    store.close()
    scratch.cleanup()
    return {part: {who: percentiles(s) for who, s in by.items()} for part, by in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="a run directory (whyrec train --out ...)")
    parser.add_argument("--db", default=None, help="event store URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--users", type=int, default=200, help="run users the clients act as")
    parser.add_argument("--auth", choices=["token", "key", "none"], default="token")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--auth-cost", type=int, default=0, metavar="N", help="measure auth cost (N requests)"
    )
    args = parser.parse_args(argv)
    if not (args.run / "run.json").exists():
        raise SystemExit(f"not a whyrec run directory: {args.run}")
    if args.auth_cost:
        cost = auth_cost(args.run, args.auth_cost, args.seed)
        for part, by in cost.items():
            print(f"  {part:<10} token p50 {by['token']['p50_ms']} ms, p95 {by['token']['p95_ms']} ms | "
                  f"open p50 {by['open']['p50_ms']} ms, p95 {by['open']['p95_ms']} ms")  # fmt: skip
        if args.json:
            note = "in process (TestClient), alternating; timings taken on a shared 2-core machine"
            write_result(args.json, {"auth_cost": cost, "note": note},
                         {"run": str(args.run), "requests": args.auth_cost, "seed": args.seed})  # fmt: skip
        return 0
    if not 0 < args.seconds <= 600 or not 1 <= args.clients <= 1000:
        raise SystemExit("--seconds must be in (0, 600] and --clients in [1, 1000]")

    from whyrec.events import EventStore
    from whyrec.training.recommender import Recommender

    rec = Recommender.load(args.run)
    rng = random.Random(args.seed)
    users = rng.sample(sorted(rec.histories), min(args.users, len(rec.histories)))
    items = list(rec.items.ids)
    titles = {i: rec.catalog.title(i) for i in items}
    scratch = tempfile.TemporaryDirectory(prefix="whyrec-load-")
    db = args.db or f"sqlite:///{Path(scratch.name) / 'events.db'}"
    key = None if args.auth == "none" else secrets.token_urlsafe(32)
    service = Service(args.run, db, args.workers, key)
    try:
        service.wait_ready()
        headers: dict[str, dict[str, str]] = {u: {} for u in users}
        if key:
            admin = {"Authorization": f"Bearer {key}"}
            for user in users:
                if args.auth == "key":
                    headers[user] = admin
                    continue
                issued = httpx.post(f"{service.url}/api/users/{user}/token", headers=admin, timeout=30)
                issued.raise_for_status()
                headers[user] = {"Authorization": f"Bearer {issued.json()['token']}"}
        result = asyncio.run(drive(service.url, users, headers, items, titles, args.seconds, args.clients,
                                   args.seed))  # fmt: skip
    finally:
        service.stop()

    store = EventStore(db)
    try:
        stored = {e.event_id: e for e in store.events() if e.user_id in set(users)}
    finally:
        store.close()
    lost = len([event_id for _user, event_id, value in result["acked"]
                if event_id not in stored or float(stored[event_id].value) != value])  # type: ignore[arg-type]  # fmt: skip
    all_latencies = [s for samples in result["latencies"].values() for s in samples]
    n_requests = len(all_latencies) + sum(result["errors"].values())
    payload = {
        "store": db.split(":", 1)[0].split("+")[0],
        "auth": args.auth,
        "workers": args.workers,
        "clients": args.clients,
        "seconds": round(result["elapsed"], 2),
        "requests": n_requests,
        "throughput_rps": round(n_requests / result["elapsed"], 2),
        "errors": sum(result["errors"].values()),
        "errors_by_kind": dict(result["errors"]),
        "error_samples": result["error_samples"],
        "events_acknowledged": len(result["acked"]),
        "events_lost": lost,
        "latency": {
            "all": percentiles(all_latencies),
            **{kind: percentiles(result["latencies"][kind]) for kind in MIX},
        },
        "note": "timings taken on a shared 2-core machine; client and server share the cores",
    }
    config = {"run": str(args.run), "mix": MIX, "users": len(users), "seed": args.seed,
              "workers": args.workers, "clients": args.clients, "seconds": args.seconds, "auth": args.auth,
              "db": payload["store"]}  # fmt: skip
    print(f"load ({payload['store']}, auth={args.auth}, {args.workers} workers, {args.clients} clients, "
          f"{payload['seconds']} s): {n_requests} requests, {payload['throughput_rps']} req/s, "
          f"{payload['errors']} errors, {lost} of {len(result['acked'])} acknowledged events "
          "lost")  # fmt: skip
    for kind, stats in payload["latency"].items():
        if stats.get("n"):
            print(f"  {kind:<10} n={stats['n']:<6} p50 {stats['p50_ms']:>8} ms  p95 {stats['p95_ms']:>8} ms  "
                  f"p99 {stats['p99_ms']:>8} ms")  # fmt: skip
    if args.json:
        write_result(args.json, payload, config)
        print(f"wrote {args.json}")
    scratch.cleanup()
    return 0 if payload["errors"] == 0 and lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
