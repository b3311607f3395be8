"""Each user's live state, read from the event store and folded (:mod:`whyrec.events.fold`),
with the expensive derived parts (the interest profile) cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

from whyrec.errors import UnknownIdError
from whyrec.events import EventStore, LiveState, StoredEvent, digest, fold
from whyrec.explain import Explainer, Interest, InterestProfile
from whyrec.training import Recommender

#: an interest's stable key is this prefix and its oldest item (see :func:`interest_key`)
INTEREST_KEY_PREFIX = "item:"


def interest_key(interest: Interest) -> str:
    """A key that survives history changes: the interest's oldest item. Clusters are recomputed
    as the history grows and their labels move with them, but an item stays in the history and
    belongs to exactly one interest, so a mute keyed by it holds that interest and no other."""
    return INTEREST_KEY_PREFIX + interest.item_ids[0] if interest.item_ids else ""


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
        # a forgotten user's run history is never served again (their tombstone is in the store)
        in_run = self.rec.has_user(user_id) and not self.store.is_forgotten(user_id)
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
        labels = [m for m in state.muted if not m.startswith(INTEREST_KEY_PREFIX)]  # muted by label
        anchors = {m.removeprefix(INTEREST_KEY_PREFIX) for m in state.muted} - set(labels)
        found = self.explainer.interests(state.user_id, history=list(state.history), muted=labels)
        profile = InterestProfile(found.user_id, tuple(
            replace(i, muted=True) if anchors.intersection(i.item_ids) else i for i in found.interests
        ))  # fmt: skip
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
        """Delete the user's events and tokens, leave a tombstone, drop the cached profile."""
        deleted = self.store.forget(user_id)
        with self._lock:
            self._profiles.pop(user_id, None)
        return deleted

    def users(self, limit: int) -> list[tuple[str, int, bool]]:
        """(user id, history length, in the run) for the page's picker: recently active store users
        first, then the run's users with the longest histories."""
        out: list[tuple[str, int, bool]] = []
        seen: set[str] = set()
        for user in self.store.users()[:limit]:
            seen.add(user)
            state = self.state(user)
            out.append((user, len(state.history), state.in_run))
        ranked = sorted(self.rec.histories, key=lambda u: (-len(self.rec.histories[u]), u))
        forgotten = self.store.forgotten()
        for user in ranked:
            if len(out) >= limit:
                break
            if user not in seen and digest(user) not in forgotten:
                out.append((user, len(self.rec.histories[user]), True))
        return out
