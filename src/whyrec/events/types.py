"""What an event is: its types, what each means for a user's sequence, and a stored event.

Both the service (which records events and answers from them at once) and training (which folds
them into the next run) read these definitions; neither owns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args

EventType = Literal[
    "view", "click", "like", "rate", "not_interested", "remove", "mute_interest", "unmute_interest"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
#: events that extend the user's sequence
POSITIVE_TYPES = frozenset({"view", "click", "like", "rate"})
#: events that name an interest label instead of an item
INTEREST_TYPES = frozenset({"mute_interest", "unmute_interest"})
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class StoredEvent:
    event_id: int
    user_id: str
    item_id: str | None
    type: str
    value: float | str | None
    created_at: float


class EventLike(Protocol):
    """What folding needs of an event: a stored one, or one not yet stored."""

    @property
    def type(self) -> str: ...
    @property
    def item_id(self) -> str | None: ...
    @property
    def value(self) -> float | str | None: ...
    @property
    def created_at(self) -> float: ...
