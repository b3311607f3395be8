"""Per-user state folded from the run's history and the stored events.

The fold is the single definition of what feedback means; the service uses it for every answer
and ``whyrec train --with-feedback`` uses it to build the retraining data, so the two agree:

* ``view``, ``click``, ``like``, ``rate`` append the item to the sequence (a repeat keeps the
  first occurrence, as cleaning does) and cancel an earlier not-interested or remove of it;
* ``not_interested`` drops the item from the sequence and adds it to ``avoid`` (the item is never
  shown and its neighbours in LM space are pushed down);
* ``remove`` drops the item from the sequence and never shows it again (a what-if made permanent);
* ``mute_interest`` / ``unmute_interest`` (value = the interest's label) hide or show an interest.

The latest event about an item wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from whyrec.events.types import POSITIVE_TYPES, EventLike


@dataclass(frozen=True)
class LiveState:
    """What one user's answers are computed from, right now."""

    user_id: str
    in_run: bool  # the run has a history for this user
    history: tuple[str, ...]  # run history + positive events, dropped items removed, oldest first
    from_events: Mapping[str, float]  # history items put there by events -> when (unix seconds)
    avoid: tuple[str, ...]  # "not interested"
    removed: tuple[str, ...]
    muted: tuple[str, ...]  # muted interest labels
    n_events: int

    @property
    def known(self) -> bool:
        return self.in_run or self.n_events > 0


def fold(user_id: str, run_history: Sequence[str], events: Iterable[EventLike], in_run: bool) -> LiveState:
    """Apply ``events`` (in arrival order) to ``run_history``; see the module docstring."""
    history: dict[str, None] = dict.fromkeys(run_history)  # an ordered set
    added: dict[str, float] = {}
    avoid: dict[str, None] = {}
    removed: dict[str, None] = {}
    muted: dict[str, None] = {}
    n_events = 0
    for ev in events:
        n_events += 1
        item = ev.item_id
        if ev.type == "mute_interest" and ev.value is not None:
            muted[str(ev.value)] = None
        elif ev.type == "unmute_interest" and ev.value is not None:
            muted.pop(str(ev.value), None)
        elif item is None:
            continue
        elif ev.type in POSITIVE_TYPES:
            avoid.pop(item, None)
            removed.pop(item, None)
            if item not in history:
                history[item] = None
                added[item] = ev.created_at
        elif ev.type in ("not_interested", "remove"):
            history.pop(item, None)
            added.pop(item, None)
            (avoid if ev.type == "not_interested" else removed)[item] = None
            (removed if ev.type == "not_interested" else avoid).pop(item, None)
    return LiveState(user_id=user_id, in_run=in_run, history=tuple(history), from_events=added,
                     avoid=tuple(avoid), removed=tuple(removed), muted=tuple(muted),
                     n_events=n_events)  # fmt: skip
