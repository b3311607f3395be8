"""The interactive service: a FastAPI app (built by :func:`create_app`), an event store and a web page.

Feedback acts at once: each user's answers are computed from the run's history folded with their
stored events (:mod:`whyrec.events.fold`), so nothing needs retraining until
``whyrec train --run RUN --with-feedback`` folds the events into the data.
"""

from whyrec.events import EVENT_TYPES, EventStore, LiveState, StoredEvent, StoreError, default_db_url, fold
from whyrec.service.app import create_app
from whyrec.service.server import serve
from whyrec.service.settings import ServiceSettings

__all__ = [
    "EVENT_TYPES",
    "EventStore",
    "LiveState",
    "ServiceSettings",
    "StoreError",
    "StoredEvent",
    "create_app",
    "default_db_url",
    "fold",
    "serve",
]
