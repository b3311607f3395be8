"""The event store: every piece of feedback the service receives, in arrival order.

SQLAlchemy 2 Core over any database URL. The default is a SQLite file in WAL mode (readers never
block the writer); PostgreSQL works through ``postgresql+psycopg://``. Events are append-only:
the state a user sees is folded from them (see :mod:`whyrec.events.fold`), so nothing is
ever updated in place and forgetting a user is one ``DELETE``.

Two more tables serve access control and forgetting, and neither holds a user id in plain text:
``whyrec_tokens`` lists the per-user tokens still valid (a SHA-256 digest of each token, never
the token), and ``whyrec_forgotten`` keeps a tombstone (a digest of the user id) for every user
who asked to be forgotten, so their history in the trained run stays hidden and retraining
leaves it out. ``whyrec_rate`` counts requests per credential (digest) per minute, so that the
workers of one service share their rate limits.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from whyrec.errors import WhyrecError
from whyrec.events.types import EVENT_TYPES, MAX_ID_LENGTH, StoredEvent

metadata = MetaData()
events_table = Table(
    "whyrec_events",
    metadata,
    # BigInteger on PostgreSQL; SQLite only auto-increments an INTEGER primary key
    Column("event_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_ID_LENGTH), nullable=False, index=True),
    Column("item_id", String(MAX_ID_LENGTH), nullable=True),
    Column("type", String(32), nullable=False),
    Column("value", JSON, nullable=True),
    Column("created_at", Float, nullable=False),  # unix seconds
)
tokens_table = Table(
    "whyrec_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("user_digest", String(64), nullable=False, index=True),
    Column("token_digest", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)
forgotten_table = Table(
    "whyrec_forgotten",
    metadata,
    Column("user_digest", String(64), primary_key=True),
    Column("forgotten_at", Float, nullable=False),
)
rate_table = Table(
    "whyrec_rate",
    metadata,
    Column("bucket", String(32), primary_key=True),
    Column("key_digest", String(64), primary_key=True),
    Column("window", BigInteger, primary_key=True),  # whole minutes since the epoch
    Column("hits", Integer, nullable=False),
)


def digest(text: str) -> str:
    """The SHA-256 hex digest that stands for a user id or a token wherever one is stored."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoreError(WhyrecError):
    """The event database cannot be opened or written."""


def default_db_url(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'events.db'}"


class EventStore:
    """Append, read and forget events. Safe to share between threads."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        try:
            self.engine: Engine = _make_engine(url, echo)
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot use event store URL {redact_url(url)!r}: {exc}") from None
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time; queueing writers here is cheaper than busy retries
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open event store {redact_url(url)!r}: {_first_line(exc)}") from None

    # -- writing ----------------------------------------------------------------------------------
    def add(self, user_id: str, type: str, item_id: str | None = None, value: float | str | None = None,
            created_at: float | None = None) -> StoredEvent:  # fmt: skip
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        row: dict[str, Any] = {"user_id": user_id, "item_id": item_id, "type": type, "value": value,
                               "created_at": time.time() if created_at is None else created_at}  # fmt: skip
        with self._writing() as conn:
            result = conn.execute(insert(events_table).returning(events_table.c.event_id), row)
            event_id = int(result.scalar_one())
        return StoredEvent(event_id=event_id, **row)

    def delete_user(self, user_id: str) -> int:
        """Delete the user's events only (see :meth:`forget` for forgetting them everywhere)."""
        with self._writing() as conn:
            result = conn.execute(delete(events_table).where(events_table.c.user_id == user_id))
            return int(result.rowcount or 0)

    def forget(self, user_id: str) -> int:
        """In one transaction: delete the user's events and tokens and leave a tombstone (a digest
        of the id) that hides their run history from now on. Returns the events deleted."""
        key = digest(user_id)
        with self._writing() as conn:
            result = conn.execute(delete(events_table).where(events_table.c.user_id == user_id))
            conn.execute(delete(tokens_table).where(tokens_table.c.user_digest == key))
            conn.execute(delete(forgotten_table).where(forgotten_table.c.user_digest == key))
            conn.execute(insert(forgotten_table), {"user_digest": key, "forgotten_at": time.time()})
            return int(result.rowcount or 0)

    def add_token(self, token_id: str, user_id: str, token: str, expires_at: float) -> None:
        """Record a token as valid (its digest only); expired rows are dropped on the way."""
        row = {"token_id": token_id, "user_digest": digest(user_id), "token_digest": digest(token),
               "expires_at": expires_at}  # fmt: skip
        with self._writing() as conn:
            conn.execute(delete(tokens_table).where(tokens_table.c.expires_at < time.time()))
            conn.execute(insert(tokens_table), row)

    def token_valid(self, token_id: str, token: str) -> bool:
        """The token was issued here, is not revoked and has not expired."""
        query = select(tokens_table.c.token_digest, tokens_table.c.expires_at).where(
            tokens_table.c.token_id == token_id
        )
        with self._reading() as conn:
            row = conn.execute(query).first()
        return row is not None and row[0] == digest(token) and float(row[1]) > time.time()

    def revoke_tokens(self, user_id: str) -> int:
        with self._writing() as conn:
            result = conn.execute(delete(tokens_table).where(tokens_table.c.user_digest == digest(user_id)))
            return int(result.rowcount or 0)

    def is_forgotten(self, user_id: str) -> bool:
        query = select(func.count()).select_from(forgotten_table)
        query = query.where(forgotten_table.c.user_digest == digest(user_id))
        with self._reading() as conn:
            return bool(conn.execute(query).scalar_one())

    def forgotten(self) -> set[str]:
        """The digests of every forgotten user (compare with :func:`digest` of an id)."""
        with self._reading() as conn:
            return {str(d) for d in conn.execute(select(forgotten_table.c.user_digest)).scalars()}

    def count_request(self, bucket: str, key: str, window: int,
                      allowed: Callable[[int, int], bool]) -> tuple[int, int, bool]:  # fmt: skip
        """Count one request of credential KEY in minute WINDOW of BUCKET if
        ``allowed(hits_before, previous_window_hits)``; returns those two counts and whether it was
        counted. One transaction: the increment comes first (an upsert, which locks the row), so
        concurrent workers never both pass on the same last free hit. Windows older than the
        previous one are dropped when a credential opens a new window."""
        key_digest = digest(key)
        row = {"bucket": bucket, "key_digest": key_digest, "window": window, "hits": 1}
        upsert: Any  # INSERT ... ON CONFLICT counts a request in one statement
        if self.dialect == "postgresql":
            upsert = postgresql.insert(rate_table).values(row)
        elif self.dialect == "sqlite":
            upsert = sqlite.insert(rate_table).values(row)
        else:
            raise StoreError(f"shared rate limits need SQLite or PostgreSQL, not {self.dialect}")
        upsert = upsert.on_conflict_do_update(index_elements=["bucket", "key_digest", "window"],
                                              set_={"hits": rate_table.c.hits + 1})  # fmt: skip
        this_key = (rate_table.c.bucket == bucket) & (rate_table.c.key_digest == key_digest)
        with self._writing() as conn:
            current = int(conn.execute(upsert.returning(rate_table.c.hits)).scalar_one()) - 1
            query = select(rate_table.c.hits).where(this_key & (rate_table.c.window == window - 1))
            before = int(conn.execute(query).scalar() or 0)
            if not allowed(current, before):
                conn.execute(update(rate_table).where(this_key & (rate_table.c.window == window))
                             .values(hits=rate_table.c.hits - 1))  # fmt: skip
                return current, before, False
            if current == 0:
                conn.execute(delete(rate_table).where(rate_table.c.window < window - 1))
            return current, before, True

    # -- reading ----------------------------------------------------------------------------------
    def events(self, user_id: str | None = None) -> list[StoredEvent]:
        """One user's events (or everyone's) in arrival order."""
        query = select(events_table).order_by(events_table.c.event_id)
        if user_id is not None:
            query = query.where(events_table.c.user_id == user_id)
        with self._reading() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]

    def count(self, user_id: str | None = None, since: float | None = None) -> int:
        """Events stored (of one user; created at or after ``since``)."""
        query = select(func.count()).select_from(events_table)
        if user_id is not None:
            query = query.where(events_table.c.user_id == user_id)
        if since is not None:
            query = query.where(events_table.c.created_at >= since)
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    def users(self) -> list[str]:
        """Users with stored events, most recently active first."""
        last = func.max(events_table.c.event_id)
        query = select(events_table.c.user_id).group_by(events_table.c.user_id).order_by(last.desc())
        with self._reading() as conn:
            return [str(u) for u in conn.execute(query).scalars()]

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing ---------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        lock = self._write_lock
        try:
            if lock is not None:
                lock.acquire()
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"event store write failed: {_first_line(exc)}") from None
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"event store read failed: {_first_line(exc)}") from None


def _make_engine(url: str, echo: bool) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, echo=echo, pool_pre_ping=True, future=True)
    args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
    if url in ("sqlite://", "sqlite:///:memory:"):  # one shared connection, or each sees its own db
        engine = create_engine(url, echo=echo, connect_args=args, poolclass=StaticPool)
    else:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args=args)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        event_id=int(row["event_id"]), user_id=str(row["user_id"]), item_id=row["item_id"],
        type=str(row["type"]), value=row["value"], created_at=float(row["created_at"]),
    )  # fmt: skip


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def redact_url(url: str) -> str:
    """Never echo a password back."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"
