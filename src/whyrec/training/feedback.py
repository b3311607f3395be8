"""``whyrec train --run RUN --with-feedback``: fold the events stored by ``whyrec serve`` into the
run's dataset and train a new run on the result.

The fold is the service's own (:func:`whyrec.events.fold`), so the retrained model learns
from exactly the sequences the service was answering from: liked, clicked, viewed and rated items
join the user's sequence at the time of the event; items marked not interested or removed leave
it. Interest mutes are presentation, not behaviour, and are not used. Users who asked to be
forgotten (a tombstone in the store) are left out entirely: none of their interactions reach the
new run. The original run is never touched: the new run goes to ``--out`` (default: a sibling
``RUN-feedback``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

import numpy as np
import pandas as pd

from whyrec.data import Dataset, LoadOptions, leave_one_out
from whyrec.data.dataset import ItemCatalog, clean
from whyrec.errors import RunError, WhyrecError
from whyrec.events import INTEREST_TYPES, EventStore, StoredEvent, default_db_url, digest, fold
from whyrec.text.encoder import make_encoder
from whyrec.training.adapt import AdaptConfig
from whyrec.training.pipeline import prepare, train_run
from whyrec.training.recommender import ADDED_ITEMS
from whyrec.training.registry import build_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldReport:
    """What the events did to the dataset."""

    events_total: int
    events_used: int  # item events about items the dataset knows
    events_ignored: int  # interest mutes, and events about items the dataset does not know
    users: int  # users with at least one used event
    new_users: int  # of those, users the dataset did not have
    added: int  # interactions appended
    dropped: int  # interactions removed (not interested, remove, or moved to the event's time)
    forgotten_users: int = 0  # users left out because they asked to be forgotten

    def line(self) -> str:
        return (f"feedback: used {self.events_used:,} of {self.events_total:,} stored events "
                f"({self.users:,} users, {self.new_users:,} new): +{self.added:,} interactions, "
                f"-{self.dropped:,} dropped, {self.events_ignored:,} ignored, "
                f"{self.forgotten_users:,} forgotten users left out")  # fmt: skip


def fold_events_into(
    dataset: Dataset,
    events: Iterable[StoredEvent],
    forgotten: Iterable[str] = (),
    new_items: Iterable[str] = (),
) -> tuple[Dataset, FoldReport]:
    """A new :class:`Dataset` with every user's stored events applied to their sequence, and the
    users whose id digest (:func:`whyrec.events.digest`) is in ``forgotten`` left out; events about
    NEW_ITEMS (items added to the run, in the catalogue) count as well."""
    frame = dataset.interactions
    n_forgotten = 0
    forgotten = set(forgotten)
    if forgotten:
        gone = {u for u in frame["user_id"].unique() if digest(str(u)) in forgotten}
        n_forgotten = len(gone)
        frame = frame[~frame["user_id"].isin(gone)]
        events = [e for e in events if digest(e.user_id) not in forgotten]
    known_items = set(frame["item_id"].unique()) | set(new_items)
    sequences = dataset.sequences()
    last_seen = frame.groupby("user_id", sort=False)["timestamp"].max().to_dict()
    events = sorted(events, key=lambda e: (e.user_id, e.event_id))
    total = len(events)
    usable = [e for e in events if e.type not in INTEREST_TYPES and e.item_id in known_items]
    drop_pairs: set[tuple[str, str]] = set()
    rows: list[dict[str, object]] = []
    users = new_users = 0
    for user_id, group in groupby(usable, key=lambda e: e.user_id):
        user_events = list(group)
        users += 1
        new_users += user_id not in sequences
        state = fold(user_id, sequences.get(user_id, []), user_events, in_run=user_id in sequences)
        drop_pairs.update((user_id, i) for i in (*state.avoid, *state.removed, *state.from_events))
        ratings = {e.item_id: e.value for e in user_events if e.type == "rate" and e.value is not None}
        floor = float(last_seen.get(user_id, -np.inf))
        for item_id, created_at in state.from_events.items():
            # never before the user's own logged past, whatever the clocks say
            rows.append({"user_id": user_id, "item_id": item_id, "timestamp": max(created_at, floor),
                         "rating": ratings.get(item_id, np.nan)})  # fmt: skip
    pairs = pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])
    keep = ~pairs.isin(list(drop_pairs)) if drop_pairs else np.ones(len(frame), dtype=bool)
    added = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    if "rating" not in frame.columns:
        added = added.drop(columns=["rating"])
    raw = pd.concat([frame[keep], added], ignore_index=True)
    cleaned, report = clean(raw, k_core=0)
    folded = Dataset(
        name=f"{dataset.name}+feedback", interactions=cleaned, catalog=dataset.catalog, report=report
    )
    return folded, FoldReport(events_total=total, events_used=len(usable), events_ignored=total - len(usable),
                              users=users, new_users=new_users, added=len(added),
                              dropped=int((~keep).sum()), forgotten_users=n_forgotten)  # fmt: skip


@dataclass(frozen=True)
class Retrained:
    """The run ``retrain_with_feedback`` wrote."""

    out: Path
    model: str
    report: FoldReport
    test: dict[str, float]


def retrain_with_feedback(
    run_dir: Path,
    *,
    with_feedback: bool = True,
    dataset: str | None = None,
    options: LoadOptions | None = None,
    encoder: str | None = None,
    model: str | None = None,
    settings: Mapping[str, str] | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    db: str | None = None,
    progress: bool = True,
    adapt: AdaptConfig | None = None,
) -> Retrained:
    """The ``train --run RUN [--with-feedback]`` command (see the module docstring).

    DATASET, ENCODER and MODEL default to the run's own; SETTINGS are added to the run's own when
    its model is kept. OUT defaults to a sibling ``RUN-feedback``."""
    info = _run_info(run_dir)
    spec = dataset or info.get("dataset")
    if not spec:
        raise RunError(f"run {run_dir} does not record its dataset; pass --dataset SPEC")
    encoder = encoder or info.get("encoder")
    name = model or str(info["model"])
    kept = info.get("settings", {}) if name == info["model"] else {}
    merged = {**kept, **(settings or {})}
    scorer = build_models([name], merged)[name]  # a bad name or setting fails before any work
    out = out or run_dir.with_name(f"{run_dir.name}-feedback")
    _check_out(run_dir, out, overwrite)

    events: list[StoredEvent] = []
    forgotten: set[str] = set()
    if with_feedback:
        if not db and not (run_dir / "events.db").exists():
            raise WhyrecError(
                f"no event store in {run_dir} (events.db); pass --db URL if events live elsewhere"
            )
        store = EventStore(db or default_db_url(run_dir))
        try:
            events = store.events()
            forgotten = store.forgotten()
        finally:
            store.close()
        log.info(f"read {len(events):,} stored events")
    prepared = prepare(spec, options or LoadOptions(), encoder, progress=progress, adapt=adapt)
    added = _added_items(run_dir)
    if added:
        catalog = prepared.dataset.catalog
        ids = list(dict.fromkeys([*catalog.titles, *catalog.attributes, *catalog.descriptions]))
        records = catalog.to_records(ids) + added
        with_added = replace(prepared.dataset, catalog=ItemCatalog.from_records(records))
        prepared = replace(prepared, dataset=with_added)
        log.info(f"{len(added):,} items added to the run in service are in the catalogue")
    folded, report = fold_events_into(prepared.dataset, events, forgotten, [str(r["item_id"]) for r in added])
    log.info(report.line())
    split = leave_one_out(folded)
    vectors = prepared.item_vectors
    if split.items.ids != prepared.split.items.ids:  # the item set moved: re-read vectors (cached)
        vectors = make_encoder(encoder, progress=progress).encode(
            [folded.catalog.text(i) for i in split.items.ids]
        )
    prepared = replace(prepared, dataset=folded, split=split, item_vectors=vectors)
    out.mkdir(parents=True, exist_ok=True)
    log.info(f"retraining {name} on {spec} with feedback from {run_dir}")
    recommender, row = train_run(prepared, name, out, progress=progress, model=scorer, settings=merged)
    untrained = [r for r in added if str(r["item_id"]) not in recommender.items]
    if untrained:  # added items nobody has used yet stay added items of the new run
        texts = [folded.catalog.text(str(r["item_id"])) for r in untrained]
        recommender.add_items(untrained, make_encoder(encoder, progress=progress).encode(texts))
        recommender.save_added(out)
    (out / "feedback.json").write_text(json.dumps({"source_run": str(run_dir), **vars(report)}, indent=2))
    return Retrained(out=out, model=name, report=report, test=row)


def _added_items(run_dir: Path) -> list[dict]:
    """The catalogue records of the items added to the run in service (``POST /api/items``)."""
    path = run_dir / ADDED_ITEMS
    try:
        return list(json.loads(path.read_text())) if path.exists() else []
    except (OSError, ValueError) as exc:
        raise RunError(f"the items added to run {run_dir} cannot be read: {exc}") from None


def _run_info(run_dir: Path) -> dict:
    try:
        return dict(json.loads((run_dir / "run.json").read_text()))
    except FileNotFoundError:
        raise RunError(f"not a whyrec run directory (no run.json): {run_dir}") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"run directory {run_dir} is damaged: {exc}") from None


def _check_out(run_dir: Path, out: Path, overwrite: bool) -> None:
    if out.resolve() == run_dir.resolve() and not overwrite:
        raise WhyrecError(f"--out {out} is the original run; pass --overwrite to replace it")
    if (out / "run.json").exists() and not overwrite:
        raise WhyrecError(f"run directory {out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise WhyrecError(f"--out {out} is a file, not a directory")
