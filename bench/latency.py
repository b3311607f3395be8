"""Latency of the service for one run: recommend (k=10) and recommend+explain, in process and over
HTTP (uvicorn on a free port, one request at a time). Prints p50/p95 and writes JSON.

    python -m bench.latency --run runs/demo [--users 50] [--repeats 3] [--json bench/out/latency.json]
    python -m bench.latency --run runs/demo --profile   # where an explanation's scoring goes, part by part

Every call goes through the service layer (live state read from a fresh SQLite event store, then
the model), so the figures are what a request pays minus HTTP. A user's first explained request
also computes their interest profile (cached afterwards, until their history changes); it is
reported on its own line.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import write_result

if TYPE_CHECKING:
    from whyrec.explain.explainer import ExplainConfig
    from whyrec.training.recommender import Recommender

TARGETS_MS = {"recommend": 10.0, "recommend+explain": 50.0}  # in-process p95 targets (issue 4)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    return {"n": len(ms), "p50_ms": round(pick(0.50), 3), "p95_ms": round(pick(0.95), 3),
            "mean_ms": round(statistics.fmean(ms), 3), "max_ms": round(ms[-1], 3)}  # fmt: skip


def timed(calls: list[Callable[[], object]], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        for call in calls:
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="a run directory (whyrec train --out ...)")
    parser.add_argument("--users", type=int, default=50, help="users sampled from the run")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the sampled users")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("bench/out/latency.json"))
    parser.add_argument("--no-http", action="store_true", help="in-process figures only")
    parser.add_argument(
        "--profile", action="store_true",
        help="also time each part of the model on the batch an explanation scores",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads (torch, BLAS), as `whyrec serve` sets them")  # fmt: skip
    args = parser.parse_args(argv)
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be at least 1, not {args.torch_threads}")

    import torch

    from whyrec.service import EventStore, ServiceSettings, create_app
    from whyrec.service.server import set_threads
    from whyrec.training.recommender import Recommender

    set_threads(args.torch_threads)  # torch's and numpy's BLAS, as `whyrec serve` sets them
    rec = Recommender.load(args.run)
    users = sorted(rec.histories)
    users = random.Random(args.seed).sample(users, min(args.users, len(users)))
    workdir = Path(tempfile.mkdtemp(prefix="whyrec-latency-"))
    store = EventStore(f"sqlite:///{workdir / 'events.db'}")
    app = create_app(rec, store, ServiceSettings(run_dir=str(args.run), semantic_search=False))
    live = app.state.live
    k = args.k
    lengths = [len(rec.histories[u]) for u in users]
    print(f"run {args.run}: {rec.model.name}, {rec.n_items:,} items; {len(users)} users "
          f"(history median {statistics.median(lengths):.0f}, max {max(lengths)}), {args.repeats} passes, "
          f"k={k}, torch threads {torch.get_num_threads()}", flush=True)  # fmt: skip

    def state(u: str) -> Any:
        return live.sessions.require(u)

    # one warm-up call of each kind on a user outside the sample (first torch calls are slow)
    warm = next(u for u in sorted(rec.histories) if u not in set(users))
    live.recommend_explained(state(warm), k, "en")
    top_items = {u: rec.recommend(u, k=1)[0].item_id for u in users}

    # each call looks its user's session up when it runs, as a request does
    def recommend(u: str) -> object:
        return live.recommend(state(u), k)

    def recommend_explained(u: str) -> object:
        return live.recommend_explained(state(u), k, "en")

    def explain_top(u: str) -> object:
        return live.explain(state(u), top_items[u], k, "en")

    def core_recommend(u: str) -> object:
        return rec.recommend(u, k=k)

    def each_user(call: Callable[[str], object]) -> list[Callable[[], object]]:
        return [functools.partial(call, u) for u in users]

    explained = each_user(recommend_explained)
    kinds: dict[str, list[Callable[[], object]]] = {
        "recommend": each_user(recommend),
        "recommend+explain": explained,
        "explain one (with counterfactual)": each_user(explain_top),
        "core Recommender.recommend": each_user(core_recommend),
    }
    results: dict[str, Any] = {"in_process": {}, "http": {}}
    # a user's first request also computes their interest profile (then cached): measured apart
    live.sessions.clear_cache()
    cold = "recommend+explain, first request"
    results["in_process"][cold] = percentiles(timed(explained, 1))
    print(f"  in process  {cold:<36} {_fmt(results['in_process'][cold])}", flush=True)
    for name, calls in kinds.items():
        results["in_process"][name] = percentiles(timed(calls, args.repeats))
        print(f"  in process  {name:<36} {_fmt(results['in_process'][name])}", flush=True)

    if args.profile:
        results["breakdown"] = _breakdown(rec, live.explainer.config, users, k)

    if not args.no_http:
        import httpx

        from whyrec.service.testing import running_server

        with running_server(app) as base, httpx.Client(base_url=base, timeout=60) as http:
            routes = {
                "recommend": lambda u: f"/api/users/{u}/recommendations?k={k}",
                "recommend+explain": lambda u: f"/api/users/{u}/recommendations?k={k}&explain=true",
                "explain one (with counterfactual)":
                    lambda u: f"/api/users/{u}/recommendations/{top_items[u]}/explanation?k={k}",
            }  # fmt: skip
            http.get("/api/health")
            for name, path in routes.items():
                calls = [_getter(http, path(u)) for u in users]
                results["http"][name] = percentiles(timed(calls, args.repeats))
                print(f"  over HTTP   {name:<36} {_fmt(results['http'][name])}", flush=True)

    verdict = {name: results["in_process"][name]["p95_ms"] <= target for name, target in TARGETS_MS.items()}
    for name, target in TARGETS_MS.items():
        p95 = results["in_process"][name]["p95_ms"]
        met = "yes" if verdict[name] else "NO"
        print(f"target {name}: in-process p95 {p95:.1f} ms <= {target:.0f} ms: {met}")
    report = {
        "run": str(args.run), "model": rec.model.name, "dataset": rec.info.get("dataset"),
        "n_items": rec.n_items, "users": len(users), "repeats": args.repeats, "k": k,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        **results, "targets_ms": TARGETS_MS, "meets_targets": verdict,
    }  # fmt: skip
    config = {k: getattr(args, k) for k in ("users", "repeats", "k", "seed", "torch_threads", "no_http")}
    print(f"wrote {write_result(args.json, report, {'run': str(args.run), **config})}")
    store.close()
    return 0


def _getter(http: Any, path: str) -> Callable[[], None]:
    def get() -> None:
        response = http.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    return get


def _fmt(stats: dict[str, float]) -> str:
    return f"p50 {stats['p50_ms']:8.2f} ms   p95 {stats['p95_ms']:8.2f} ms   (n={stats['n']})"


def _breakdown(
    rec: Recommender, config: ExplainConfig, users: list[str], k: int
) -> dict[str, dict[str, float]]:
    """Where the scoring of an explained top K goes, for each user's batch of a history and its
    occluded variants: each part of the model scoring it on this thread, one after the other;
    all parts as the model scores them (a hybrid: side by side); and, for a hybrid that fuses
    ranks, each part's rank fusion at the top K and the whole fusion. Medians and p95 over users."""
    from whyrec.explain.context import variants
    from whyrec.models.base import reads_positions, visible
    from whyrec.models.hybrid import Hybrid, rank_scores_at

    model = rec.model
    parts = model.parts() if isinstance(model, Hybrid) else {model.name: model}
    fuses = isinstance(model, Hybrid) and model.config.normalise == "rank"
    samples: dict[str, list[float]] = {}

    def timed_call(name: str, function: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        out = function(*args)
        samples.setdefault(name, []).append(time.perf_counter() - start)
        return out

    for user in users:
        history = rec.histories[user]
        indices = rec.to_indices(history)
        start = max(0, len(indices) - config.window)
        batch = variants(indices, start, config.occlusion, reads_positions(model))
        seen = [visible(h) for h in batch]
        scores = timed_call("all parts (as the model scores them)", rec.score_lazily, batch)
        top = [rec.item_index(r.item_id) for r in rec.top_k(rec.adjust(scores.row(0), history), k)]
        for name, part in parts.items():
            raw = timed_call(f"score: {name}", part.score, batch if reads_positions(part) else seen)
            if fuses:
                timed_call(f"rank fusion at top {k}: {name}", rank_scores_at, raw, seen, top)
        if fuses:
            timed_call(f"rank fusion at top {k} (as the model fuses)", scores.at, top)
    print(f"\nscoring of an explained top {k}, {len(users)} users "
          "(a batch: the history and its occluded variants):")  # fmt: skip
    report = {}
    for name, values in samples.items():
        report[name] = percentiles(values)
        print(f"  {name:<48} {_fmt(report[name])}")
    return report


if __name__ == "__main__":
    sys.exit(main())
