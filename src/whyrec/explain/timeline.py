"""How a user's interests formed and changed: each interest's share of the history, window by
window (oldest first), beside the long-term vs recent split of the profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from whyrec.explain.interests import MAX_PROFILE_ITEMS
from whyrec.explain.types import Interest, InterestProfile


@dataclass(frozen=True)
class TimelineWindow:
    start: int  # history positions [start, end), 0 = the oldest item
    end: int
    shares: tuple[float, ...]  # one per interest of the timeline, in its order; they sum to 1


@dataclass(frozen=True)
class InterestTimeline:
    user_id: str | None
    interests: tuple[Interest, ...]
    windows: tuple[TimelineWindow, ...]


def interest_timeline(
    profile: InterestProfile, history: Sequence[str], n_windows: int = 8
) -> InterestTimeline:
    """Split the profiled part of ``history`` (its most recent items, the ones the interests were
    read from) into at most ``n_windows`` consecutive windows of events and give each interest's
    share of every window."""
    interests = tuple(i for i in profile.interests if not i.muted)
    owner = {item: n for n, interest in enumerate(interests) for item in interest.item_ids}
    offset = max(0, len(history) - MAX_PROFILE_ITEMS)
    profiled = [(p, h) for p, h in enumerate(history) if p >= offset and h in owner]
    windows = []
    if profiled and interests:
        size = -(-len(profiled) // max(1, n_windows))  # ceiling division
        for start in range(0, len(profiled), size):
            chunk = profiled[start : start + size]
            counts = [0] * len(interests)
            for _, item in chunk:
                counts[owner[item]] += 1
            shares = tuple(c / len(chunk) for c in counts)
            windows.append(TimelineWindow(chunk[0][0], chunk[-1][0] + 1, shares))
    return InterestTimeline(profile.user_id, interests, tuple(windows))
