"""Shared fixtures: tiny datasets written by the tests, synthetic sequences with known answers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA = Path(os.environ.get("WHYREC_SHARED_DATA", SHARED_DATA))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding caches go to a per-session temp folder, never to $HOME."""
    monkeypatch.setenv("WHYREC_CACHE", str(tmp_path_factory.getbasetemp() / "whyrec-cache"))


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present (real data lives in ../shared/data)")
    return path


def markov_successor(n_items: int, seed: int = 0) -> np.ndarray:
    """A random permutation with one cycle through all items: item i is followed by successor[i]."""
    order = np.random.default_rng(seed + 1000).permutation(n_items)
    successor = np.empty(n_items, dtype=np.int64)
    successor[order] = np.roll(order, -1)
    return successor


def markov_sequences(
    n_users: int = 300, n_items: int = 40, length: int = 20, seed: int = 0, noise: float = 0.0
) -> list[list[int]]:
    """Each user walks an order-1 Markov chain (see ``markov_successor``) from a random start.

    The next item is fully determined by the current one (up to ``noise``), and since the chain
    is one cycle longer than ``length``, no user meets an item twice: a model that learns
    order-1 transitions ranks the target first.
    """
    rng = np.random.default_rng(seed)
    successor = markov_successor(n_items, seed)
    out = []
    for _ in range(n_users):
        item = int(rng.integers(n_items))
        seq = [item]
        for _ in range(length - 1):
            item = int(rng.integers(n_items)) if rng.random() < noise else int(successor[item])
            seq.append(item)
        out.append(seq)
    return out


def write_csv(path: Path, sequences: list[list[int]], items: bool = True) -> tuple[Path, Path | None]:
    """Write sequences as a csv interaction log (timestamps increasing) plus an item file."""
    lines = ["user_id,item_id,timestamp,rating"]
    for user, seq in enumerate(sequences):
        lines += [f"u{user},i{item},{1_600_000_000 + 60 * t},4" for t, item in enumerate(seq)]
    path.write_text("\n".join(lines) + "\n")
    item_path = None
    if items:
        n_items = max(max(s) for s in sequences) + 1
        item_path = path.with_name("items.csv")
        genres = ["Action", "Comedy", "Drama", "Horror"]
        item_path.write_text(
            "item_id,title,genres\n"
            + "\n".join(f"i{i},Item number {i},{genres[i % 4]}" for i in range(n_items))
            + "\n"
        )
    return path, item_path


@pytest.fixture(scope="session")
def recommender(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny item-kNN run on the bundled demo data (hashing encoder), shared by the service tests."""
    from whyrec.service.testing import build_tiny_run
    from whyrec.training.recommender import Recommender

    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        return Recommender.load(build_tiny_run(base / "tiny-run"))


@pytest.fixture(scope="session")
def user(recommender) -> str:  # type: ignore[no-untyped-def]
    """A demo user with at least 20 items in their history."""
    users = sorted(recommender.histories, key=lambda u: (len(recommender.histories[u]), u))
    return next(u for u in users if len(recommender.histories[u]) >= 20)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny item-kNN run on the demo data (shared by the tests; a module may define its own)."""
    from whyrec.service.testing import build_tiny_run

    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        return build_tiny_run(base / "tiny-run")
