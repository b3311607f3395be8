"""``whyrec train --run RUN --with-feedback``: fold the events stored by ``whyrec serve`` into the
run's dataset and train a new run on the result.

The fold is the service's own (:func:`whyrec.service.session.fold`), so the retrained model learns
from exactly the sequences the service was answering from: liked, clicked, viewed and rated items
join the user's sequence at the time of the event; items marked not interested or removed leave
it. Interest mutes are presentation, not behaviour, and are not used. The original run is never
touched: the new run goes to ``--out`` (default: a sibling ``RUN-feedback``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

import numpy as np
import pandas as pd

from whyrec.data import Dataset, LoadOptions, leave_one_out
from whyrec.data.dataset import clean
from whyrec.errors import RunError, WhyrecError
from whyrec.service.session import fold
from whyrec.service.store import INTEREST_TYPES, EventStore, StoredEvent, default_db_url

Say = Callable[[str], None]


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

    def line(self) -> str:
        return (f"feedback: used {self.events_used:,} of {self.events_total:,} stored events "
                f"({self.users:,} users, {self.new_users:,} new): +{self.added:,} interactions, "
                f"-{self.dropped:,} dropped, {self.events_ignored:,} ignored")  # fmt: skip


def fold_events_into(dataset: Dataset, events: Iterable[StoredEvent]) -> tuple[Dataset, FoldReport]:
    """A new :class:`Dataset` with every user's stored events applied to their sequence."""
    frame = dataset.interactions
    known_items = set(frame["item_id"].unique())
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
                              dropped=int((~keep).sum()))  # fmt: skip


def retrain_with_feedback(args: argparse.Namespace, say: Say) -> int:
    """The ``train --run RUN [--with-feedback]`` command (see the module docstring)."""
    from whyrec.models.registry import build_models, parse_settings
    from whyrec.pipeline import prepare, train_run

    run_dir = getattr(args, "run", None)
    if run_dir is None:
        raise WhyrecError("--with-feedback needs --run RUN_DIR (the run whose stored events to fold in)")
    run_dir = Path(run_dir)
    info = _run_info(run_dir)
    spec = args.dataset or info.get("dataset")
    if not spec:
        raise RunError(f"run {run_dir} does not record its dataset; pass --dataset SPEC")
    encoder = getattr(args, "encoder", None) or info.get("encoder")
    model = getattr(args, "model", None) or str(info["model"])
    # the run's own --set settings (when its model is kept), then this command's
    kept = info.get("settings", {}) if model == info["model"] else {}
    settings = {**kept, **parse_settings(getattr(args, "set", None) or [])}
    scorer = build_models([model], settings)[model]  # a bad name or setting fails before any work
    out = Path(args.out) if getattr(args, "out", None) else run_dir.with_name(f"{run_dir.name}-feedback")
    _check_out(run_dir, out, bool(getattr(args, "overwrite", False)))

    events: list[StoredEvent] = []
    if args.with_feedback:
        db = args.db or default_db_url(run_dir)
        if not args.db and not (run_dir / "events.db").exists():
            raise WhyrecError(
                f"no event store in {run_dir} (events.db); pass --db URL if events live elsewhere"
            )
        store = EventStore(db)
        try:
            events = store.events()
        finally:
            store.close()
        say(f"read {len(events):,} stored events")
    progress = not getattr(args, "quiet", False)
    prepared = prepare(spec, _load_options(args), encoder, say=say, progress=progress)
    dataset, report = fold_events_into(prepared.dataset, events)
    say(report.line())
    split = leave_one_out(dataset)
    vectors = prepared.item_vectors
    if split.items.ids != prepared.split.items.ids:  # the item set moved: re-read vectors (cached)
        from whyrec.text.encoder import make_encoder

        vectors = make_encoder(encoder, progress=progress).encode(
            [dataset.catalog.text(i) for i in split.items.ids]
        )
    prepared = replace(prepared, dataset=dataset, split=split, item_vectors=vectors)
    out.mkdir(parents=True, exist_ok=True)
    say(f"retraining {model} on {spec} with feedback from {run_dir}")
    _, row = train_run(prepared, model, out, progress=progress, say=say, model=scorer, settings=settings)
    (out / "feedback.json").write_text(json.dumps({"source_run": str(run_dir), **vars(report)}, indent=2))
    print(f"saved run {out}: {model} with {report.events_used:,} feedback events, "
          f"test NDCG@10 {row['NDCG@10']:.4f}, HR@10 {row['HR@10']:.4f}")  # fmt: skip
    return 0


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


def _load_options(args: argparse.Namespace) -> LoadOptions:
    """The dataset options of the train command (all optional when the run's own spec is reused)."""

    def option(name: str, default: str) -> str:
        return getattr(args, name, None) or default

    sep = option("sep", ",")
    return LoadOptions(
        items=getattr(args, "items", None), user_col=option("user_col", "user_id"),
        item_col=option("item_col", "item_id"), time_col=option("time_col", "timestamp"),
        rating_col=option("rating_col", "rating"), sep="\t" if sep in ("\\t", "tab") else sep,
        k_core=getattr(args, "k_core", None),
    )  # fmt: skip
