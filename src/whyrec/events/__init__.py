"""Feedback events: what each type means, how a user's events fold into their state, and where
they are stored. Used by the service (answers change at once) and by training (events folded
into the next run)."""

from whyrec.events.fold import LiveState, fold
from whyrec.events.store import EventStore, StoreError, default_db_url, digest
from whyrec.events.types import (
    EVENT_TYPES,
    INTEREST_TYPES,
    MAX_ID_LENGTH,
    POSITIVE_TYPES,
    EventLike,
    EventType,
    StoredEvent,
)

__all__ = [
    "EVENT_TYPES",
    "INTEREST_TYPES",
    "MAX_ID_LENGTH",
    "POSITIVE_TYPES",
    "EventLike",
    "EventStore",
    "EventType",
    "LiveState",
    "StoreError",
    "StoredEvent",
    "default_db_url",
    "digest",
    "fold",
]
