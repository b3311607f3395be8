"""Per-user live state, folded from the run's history and the stored events.

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

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from whyrec.errors import UnknownIdError
from whyrec.explain import Explainer, InterestProfile
from whyrec.recommender import Recommender
from whyrec.service.store import POSITIVE_TYPES, EventStore, StoredEvent


class EventLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def item_id(self) -> str | None: ...
    @property
    def value(self) -> float | str | None: ...
    @property
    def created_at(self) -> float: ...


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


class UnknownUserError(UnknownIdError):
    """A user the run has no history for and who has sent no events yet."""


class UserSessions:
    """Reads a user's live state from the store on every call (so several server processes can
    share one database) and caches the expensive derived parts (the interest profile) keyed by
    the state they were computed from."""

    def __init__(self, recommender: Recommender, store: EventStore, explainer: Explainer,
                 cache_size: int = 1024) -> None:  # fmt: skip
        self.rec = recommender
        self.store = store
        self.explainer = explainer
        self.cache_size = cache_size
        self._profiles: OrderedDict[str, tuple[tuple, InterestProfile]] = OrderedDict()
        self._lock = threading.Lock()

    def state(self, user_id: str) -> LiveState:
        in_run = self.rec.has_user(user_id)
        run_history = self.rec.histories[user_id] if in_run else []
        events = self.store.events(user_id)
        return fold(user_id, run_history, events, in_run)

    def require(self, user_id: str) -> LiveState:
        """The live state of a user who has something to recommend from, else :class:`UnknownUserError`."""
        state = self.state(user_id)
        if not state.known:
            raise UnknownUserError(
                f"unknown user {user_id!r}: no history in the run and no stored events; "
                f"POST a like to /api/users/{user_id}/events to start"
            )
        if not state.history:
            raise UnknownUserError(
                f"user {user_id!r} has no history left to recommend from; like or click an item first"
            )
        return state

    def profile(self, state: LiveState) -> InterestProfile:
        key = (state.history, state.muted)
        with self._lock:
            hit = self._profiles.get(state.user_id)
            if hit is not None and hit[0] == key:
                self._profiles.move_to_end(state.user_id)
                return hit[1]
        profile = self.explainer.interests(state.user_id, history=list(state.history), muted=state.muted)
        with self._lock:
            self._profiles[state.user_id] = (key, profile)
            self._profiles.move_to_end(state.user_id)
            while len(self._profiles) > self.cache_size:
                self._profiles.popitem(last=False)
        return profile

    def clear_cache(self) -> None:
        with self._lock:
            self._profiles.clear()

    def record(self, user_id: str, type: str, item_id: str | None, value: float | str | None) -> StoredEvent:
        return self.store.add(user_id, type, item_id=item_id, value=value)

    def forget(self, user_id: str) -> int:
        with self._lock:
            self._profiles.pop(user_id, None)
        return self.store.delete_user(user_id)

    def users(self, limit: int) -> list[tuple[str, int, bool]]:
        """(user id, history length, in the run) for the page's picker: recently active store users
        first, then the run's users with the longest histories."""
        out: list[tuple[str, int, bool]] = []
        seen: set[str] = set()
        for user in self.store.users()[:limit]:
            seen.add(user)
            out.append((user, len(self.state(user).history), self.rec.has_user(user)))
        ranked = sorted(self.rec.histories, key=lambda u: (-len(self.rec.histories[u]), u))
        for user in ranked:
            if len(out) >= limit:
                break
            if user not in seen:
                out.append((user, len(self.rec.histories[user]), True))
        return out
