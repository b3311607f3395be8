"""Scale: a synthetic power-law log (default 100k users, 1M items, 10M events) ingested and split,
item-kNN's sparse neighbour lists, one training epoch of SASRec, and top-K retrieval through the
FAISS index. Prints figures and writes stamped JSON.

    python -m bench.scale [--users 100000 --items 1000000 --events 10000000]
        [--knn-events 2000000] [--stages ingest,knn,train,retrieval,serve] [--json bench/results/scale.json]

Each stage runs in a fresh process, so its peak RSS is its own (the parent holds nothing big).
The log is written once as csv (user, item, unix seconds) into --workdir and reused. Retrieval
uses synthetic item vectors from a Gaussian mixture (a trained table of a million items is out of
reach on two cores), users drawn from the same mixture; recall@10 is against exact search.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, write_result

log = logging.getLogger("bench.scale")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def power_law(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """SIZE draws from 0..N-1 with P(rank r) proportional to 1 / (r + 1) ** EXPONENT."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cdf = np.cumsum(weights)
    return np.searchsorted(cdf, rng.random(size) * cdf[-1]).astype(np.int64)


def write_log(path: Path, n_users: int, n_items: int, n_events: int, seed: int = 0) -> None:
    """A csv log: users and items by power laws, item ids shuffled so popularity is not id order."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    relabel = rng.permutation(n_items)
    with path.open("w") as handle:
        handle.write("user_id,item_id,timestamp\n")
        for start in range(0, n_events, chunk):
            size = min(chunk, n_events - start)
            users = power_law(rng, n_users, size, 0.6)
            items = relabel[power_law(rng, n_items, size, 0.9)]
            times = 1_600_000_000 + start + np.arange(size)
            frame = pd.DataFrame({"u": users, "i": items, "t": times})
            handle.write(frame.to_csv(header=False, index=False))


def stage_ingest(path: str) -> dict[str, Any]:
    from whyrec.data import leave_one_out, load_dataset

    start = time.perf_counter()
    dataset = load_dataset(f"csv:{path}")
    loaded = time.perf_counter()
    split = leave_one_out(dataset)
    done = time.perf_counter()
    return {
        "load_and_clean_s": round(loaded - start, 2),
        "split_s": round(done - loaded, 2),
        "ingest_and_split_s": round(done - start, 2),
        "rows_read": dataset.report.rows_read,
        "interactions": dataset.report.n_interactions,
        "users_split": split.n_users,
        "items_split": split.n_items,
        "cleaning_report": dataset.report.lines(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_knn(path: str, n_events: int, neighbours: int, search: bool = False) -> dict[str, Any]:
    """Item-kNN's neighbour lists over the first N_EVENTS rows, the decay fixed at 1; with SEARCH,
    each user's last event is held out and the decay is chosen on those targets (at most
    ``valid_users`` of them, the model's default), as ``fit`` does with a split's validation."""
    import pandas as pd

    from whyrec.models import ItemKNN, ItemKNNConfig

    frame = pd.read_csv(path, nrows=n_events)
    users, _ = pd.factorize(frame["user_id"])
    items, item_ids = pd.factorize(frame["item_id"])
    order = np.argsort(users, kind="stable")
    cuts = np.flatnonzero(np.diff(users[order])) + 1
    histories = np.split(items[order].astype(np.int64), cuts)
    del frame
    valid = None
    if search:  # the last event of each user with two or more is a validation target
        longer = [h for h in histories if len(h) > 1]
        valid = ([h[:-1] for h in longer], np.array([h[-1] for h in longer]))
        histories = [h[:-1] if len(h) > 1 else h for h in histories]
    before = peak_rss_mb()
    start = time.perf_counter()
    config = (
        ItemKNNConfig(neighbours=neighbours) if search else ItemKNNConfig(neighbours=neighbours, decay=1.0)
    )
    model = ItemKNN(config).fit_histories(histories, len(item_ids), valid)
    seconds = time.perf_counter() - start
    sim = model.similarity
    n_items = len(item_ids)
    searched = (
        {"search": model.fit_info.extra["grid"], "valid_users_searched": config.valid_users} if search else {}
    )
    return {
        "events": n_events,
        "users": len(histories),
        "items": n_items,
        "neighbours": neighbours,
        "fit_s": round(seconds, 2),
        "similarity_nnz": int(sim.nnz),
        "similarity_mb": round((sim.data.nbytes + sim.indices.nbytes + sim.indptr.nbytes) / 2**20, 1),
        "dense_n_by_n_would_be_mb": round(n_items**2 * 4 / 2**20, 1),
        "peak_rss_mb_before_fit": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **searched,
    }


def stage_train(path: str, valid_users: int, dim: int) -> dict[str, Any]:
    """One epoch of SASRec (its defaults; above 50,000 items that is the sampled softmax) over the
    whole split, item text by the hashing encoder (the log's items have only their ids), early
    stopping's validation on a sample of VALID_USERS users."""
    from whyrec.data import leave_one_out, load_dataset
    from whyrec.models import FitData, SASRec, SASRecConfig, TrainingConfig
    from whyrec.text import HashingEncoder

    start = time.perf_counter()
    dataset = load_dataset(f"csv:{path}")
    split = leave_one_out(dataset)
    vectors = HashingEncoder(dim).encode([dataset.catalog.text(i) for i in split.items.ids])
    prepared = time.perf_counter() - start
    training = TrainingConfig(max_epochs=1, valid_users=valid_users)
    model = SASRec(SASRecConfig(), training).fit(FitData(split, vectors))
    extra = model.fit_info.extra
    steps = -(-extra["windows"] // training.batch_size)
    epoch_s = extra["epoch_train_seconds"][0]
    return {
        "users": split.n_users,
        "items": split.n_items,
        "prepare_s": round(prepared, 1),
        "windows": extra["windows"],
        "steps_per_epoch": steps,
        "epoch_train_s": epoch_s,
        "seconds_per_step": round(epoch_s / steps, 3),
        "loss": extra["loss"],
        "mean_candidates": extra.get("mean_candidates"),
        "softmax_columns": extra.get("softmax_columns"),
        "valid_users": extra["valid_users"],
        "valid_s": extra["epoch_valid_seconds"][0],
        "valid_NDCG@10_after_one_epoch": round(model.fit_info.best_valid_ndcg10 or 0.0, 5),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _vectors(n_items: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    items = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, 200_000):
        stop = min(n_items, start + 200_000)
        items[start:stop] = centres[rng.integers(0, 1000, stop - start)]
        items[start:stop] += 0.5 * rng.normal(size=(stop - start, dim)).astype(np.float32)
    users = centres[rng.integers(0, 1000, n_queries)] + 0.5 * rng.normal(size=(n_queries, dim))
    return items, users.astype(np.float32)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], 3),
    }


def _timed(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> dict[str, float]:
    samples = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


def stage_retrieval(n_items: int, dim: int, n_queries: int, config: dict[str, Any]) -> dict[str, Any]:
    from whyrec.training.retrieval import RetrievalConfig, Retriever, recall_at_k

    items, users = _vectors(n_items, dim, n_queries)
    cfg = RetrievalConfig(**config)
    index = Retriever(items, cfg)
    exact = Retriever(items, cfg, use_faiss=False)
    recall = recall_at_k(index, users, k=10)
    return {
        "items": n_items,
        "dim": dim,
        "queries": n_queries,
        "index": index.kind,
        "config": cfg.to_dict(),
        "build_s": round(index.build_seconds, 2),
        "recall_at_10": round(recall, 4),
        "index_top10": _timed(lambda q: index.top_k(q, 10), users),
        "exact_numpy_top10": _timed(lambda q: exact.top_k(q, 10), users),
        "item_table_mb": round(items.nbytes / 2**20, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def stage_serve(n_items: int, dim: int, n_queries: int, config: dict[str, Any]) -> dict[str, Any]:
    """Recommender.recommend end to end (history -> profile -> top 10 with titles) for the content
    model, an inner-product model, over N_ITEMS synthetic items: exact scoring against the index;
    then recommend + explain of the top 10."""
    from whyrec.data import ItemCatalog, Vocabulary
    from whyrec.explain import Explainer
    from whyrec.models import ContentModel
    from whyrec.training.recommender import Recommender
    from whyrec.training.retrieval import RetrievalConfig

    items, _ = _vectors(n_items, dim, 1)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    ids = [f"i{i}" for i in range(n_items)]
    rec = Recommender(
        ContentModel().use_vectors(items),
        Vocabulary(ids),
        ItemCatalog(titles={i: f"Item {i}" for i in ids}),
        items,
        histories={},
    )
    rng = np.random.default_rng(1)
    histories = [[ids[i] for i in rng.integers(0, n_items, 30)] for _ in range(n_queries)]
    out: dict[str, Any] = {"items": n_items, "history_length": 30, "queries": n_queries}
    out["exact"] = _timed_histories(lambda h: rec.recommend(history=h, k=10, exact=True), histories)
    rec.use_retrieval(RetrievalConfig(min_items=1, **config))
    start = time.perf_counter()
    retrieval = rec.retriever()
    assert retrieval is not None
    out["index"] = retrieval[0].kind
    out["index_build_s"] = round(time.perf_counter() - start, 2)
    out["retrieval"] = _timed_histories(lambda h: rec.recommend(history=h, k=10), histories)
    agree = [
        len({r.item_id for r in rec.recommend(history=h, k=10)} & {r.item_id for r in rec.recommend(
            history=h, k=10, exact=True)}) / 10 for h in histories
    ]  # fmt: skip
    out["served_top10_agreement_with_exact"] = round(float(np.mean(agree)), 4)
    # recommend + explain (top 10, as the service's explain=true): the exact ranking, every item's
    # evidence by occlusion, interests, sentences; the explainer's indexes are built once, first
    start = time.perf_counter()
    explainer = Explainer(rec)
    explainer.explain_recommendations(history=histories[0], k=10)
    out["explainer_setup_s"] = round(time.perf_counter() - start, 2)
    out["recommend_explain"] = _timed_histories(
        lambda h: explainer.explain_recommendations(history=h, k=10), histories
    )
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def _timed_histories(fn: Callable[[list[str]], object], histories: list[list[str]]) -> dict[str, float]:
    samples = []
    for history in histories:
        start = time.perf_counter()
        fn(history)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


def _in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--knn-events", type=int, default=2_000_000, help="first N rows for item-kNN")
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument(
        "--knn-search", action="store_true", help="knn: choose the decay on each user's last event"
    )
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index", choices=["ivf", "hnsw"], default="ivf")
    parser.add_argument("--n-probe", type=int, default=32)
    parser.add_argument("--valid-users", type=int, default=5_000, help="train: validation sample")
    parser.add_argument(
        "--stages", default="ingest,knn,retrieval,serve", help="of: ingest,knn,train,retrieval,serve"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "scale")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    parser.add_argument("--note", default="", help="conditions worth recording (e.g. other jobs running)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - {"ingest", "knn", "train", "retrieval", "serve"}
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    config = {k: v for k, v in vars(args).items() if k not in ("workdir", "json", "note")}
    retrieval_config = {"ann_threshold": 200_000, "index": args.index, "n_probe": args.n_probe}
    payload: dict[str, Any] = {"note": args.note} if args.note else {}
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"log-{args.users}-{args.items}-{args.events}.csv"
    if {"ingest", "knn", "train"} & set(stages) and not path.exists():
        start = time.perf_counter()
        write_log(path, args.users, args.items, args.events)
        log.info(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - start:.0f}s")
    for stage in stages:
        start = time.perf_counter()
        if stage == "ingest":
            result = _in_child(stage_ingest, str(path))
        elif stage == "knn":
            knn_events = min(args.knn_events, args.events)
            result = _in_child(stage_knn, str(path), knn_events, args.neighbours, args.knn_search)
        elif stage == "train":
            result = _in_child(stage_train, str(path), args.valid_users, args.dim)
        elif stage == "retrieval":
            result = _in_child(stage_retrieval, args.items, args.dim, args.queries, retrieval_config)
        else:
            result = _in_child(stage_serve, args.items, args.dim, args.queries, retrieval_config)
        payload[stage] = result
        log.info(f"{stage} ({time.perf_counter() - start:.0f}s): {result}")
    write_result(args.json, payload, config)
    log.info(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
