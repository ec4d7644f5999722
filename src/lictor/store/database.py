"""One database behind the stores: the engine, its transactions, and every dialect difference.

The stores (:mod:`lictor.store.audit`, :mod:`lictor.store.agents`,
:mod:`lictor.store.credentials`) are written once in SQLAlchemy Core; whatever SQLite
and PostgreSQL do differently lives here and nowhere else:

* **Write serialisation.** SQLite takes its one write lock with ``BEGIN IMMEDIATE``
  before the first read of a write transaction, so a read-then-write (read the chain
  head, append after it) can never be overtaken by another process. PostgreSQL takes a
  transaction-scoped advisory lock for the same purpose (:meth:`Database.writing`).
* **Durability.** SQLite runs in WAL mode with ``synchronous=FULL``: the WAL is
  fsynced at every commit, so an acknowledged record survives power loss and SIGKILL
  (https://www.sqlite.org/pragma.html#pragma_synchronous). PostgreSQL is durable at
  commit with its default ``synchronous_commit=on``. The one opt-out,
  :meth:`Database.set_sync` ``("os")``, is SQLite's ``synchronous=NORMAL``: a commit is
  in the operating system's cache when it returns, so it survives the process being
  killed but not a power loss or kernel crash.
* **Upserts.** ``INSERT ... ON CONFLICT`` needs each dialect's own insert construct.

Every SQLAlchemy error that leaves this module is a :class:`~lictor.errors.StoreError`
raised ``from`` the driver error.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import Engine, Select, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from lictor.errors import ConfigError, StoreError

__all__ = ["AUDIT_CHAIN_LOCK", "MIGRATION_LOCK", "Database", "Sync", "connect"]

Sync = Literal["full", "os"]
"""When a commit returns: ``full`` after an fsync, ``os`` once the OS has the bytes."""

_SQLITE_SYNCHRONOUS: Final[dict[str, str]] = {"full": "FULL", "os": "NORMAL"}

AUDIT_CHAIN_LOCK: Final = 0x6C6963746F7201
"""PostgreSQL advisory lock key that serialises audit appends across all replicas.

A constant, so every node of one deployment contends for the same lock. The value is
"lictor" in ASCII plus a 1-byte tag, unlikely to collide with another application's keys.
"""

MIGRATION_LOCK: Final = 0x6C6963746F7202
"""PostgreSQL advisory lock key that lets only one replica run migrations at a time."""

SQLITE_BUSY_TIMEOUT_SECONDS: Final = 10.0
"""How long a SQLite writer waits for another process's write lock before failing.

As long as the audit writer's own timeout: past it the caller has answered deny anyway.
A ``?timeout=`` query parameter in the URL overrides it.
"""

SQLITE_POOL_SIZE: Final = 48
"""SQLite connections kept open per process (as many again may open in a burst).

An idle SQLite connection is a file descriptor and a little memory; reopening one costs
a lock on the database for its pragmas.
"""

POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 10
"""How long opening a PostgreSQL connection may take; ``?connect_timeout=`` overrides it."""

_BEGIN_OPTION: Final = "lictor_sqlite_begin"

_SQLITE_NAMED: Final = sqlite.dialect(paramstyle="named")


def connect(url: str) -> Database:
    """Build a :class:`Database` for a SQLite or PostgreSQL URL; no connection is opened yet.

    ``sqlite:///path/to.db`` creates the parent directory. ``postgresql://`` (or
    ``postgres://``) uses the psycopg 3 driver.

    Raises:
        ConfigError: The URL is malformed, names another database or driver, or is an
            in-memory SQLite database (which would not be durable).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store URL {url!r} is not a database URL: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        pragmas = {"synchronous": _SQLITE_SYNCHRONOUS["full"]}
        return Database(_sqlite_engine(parsed, pragmas), sqlite_pragmas=pragmas)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return Database(_postgres_engine(parsed.set(drivername="postgresql+psycopg")))
    raise ConfigError(
        f"store URL {parsed.render_as_string(hide_password=True)!r} is not supported; use "
        "sqlite:///path/to/lictor.db or postgresql://user@host/dbname"
    )


def _sqlite_engine(url: URL, pragmas: dict[str, str]) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise ConfigError(
            "an in-memory SQLite store is not durable; give a file (sqlite:///path/to.db), "
            "or use the in-memory stores of lictor.service.memory"
        )
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory for {database}: {exc.strerror}") from exc
    connect_args: dict[str, Any] = {}
    if "timeout" not in url.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
    # QueuePool (the file default since SQLAlchemy 2.0): readers run in parallel on their
    # own connections; writers are serialised by Database's lock before taking one. Sized
    # for the server's worker threads (anyio runs up to 40): with the default 5 + 10
    # overflow, a burst of readers closed and reopened connections (each reopen runs the
    # pragmas below) and made the audit writer queue for a connection behind them.
    engine = create_engine(
        url,
        connect_args=connect_args,
        hide_parameters=True,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
    )
    event.listen(engine, "connect", partial(_configure_sqlite_connection, pragmas))
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(
    pragmas: Mapping[str, str], dbapi_connection: Any, _record: Any
) -> None:
    # Take BEGIN out of the sqlite3 module's hands (its legacy mode does not BEGIN before
    # SELECT), so _begin_sqlite_transaction decides DEFERRED or IMMEDIATE. This is the
    # recipe of SQLAlchemy's "Transactions with SQLite and the sqlite3 driver".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        # FULL: fsync the WAL at every commit. NORMAL only when asked (Database.set_sync).
        cursor.execute(f"PRAGMA synchronous={pragmas['synchronous']}")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
    # pre_ping: after a failover or a server restart, replicas drop dead connections
    # instead of failing the next audit append on one.
    return create_engine(
        url,
        connect_args=connect_args,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
    )


class Database:
    """An engine plus the rules for using it safely from several threads and nodes.

    All writes of one process go through one lock, then the database's own write lock
    (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock when asked for), so threads
    queue in Python rather than spinning in SQLite's busy handler. Reads take no lock.

    Parameter values never appear in error messages (``hide_parameters``): they may be
    audit payloads or secret hashes.
    """

    def __init__(self, engine: Engine, *, sqlite_pragmas: dict[str, str] | None = None) -> None:
        self.engine = engine
        self._write_lock = threading.Lock()
        self._closed = False
        # The pragmas every new SQLite connection gets (read by its "connect" listener).
        self._sqlite_pragmas = sqlite_pragmas if sqlite_pragmas is not None else {}
        self.sync: Sync = "full"
        # One plain driver connection per thread for hot-path key reads (read_row).
        self._readers = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._compiled: dict[Select[Any], str] = {}

    def set_sync(self, sync: Sync) -> None:
        """Choose when a commit returns; call it before the store is used.

        ``full`` (the default) fsyncs every commit: an acknowledged audit record survives
        a power loss. ``os`` (SQLite ``synchronous=NORMAL`` in WAL mode) returns once the
        operating system has the write: a record survives the process being killed
        (SIGKILL, a crash) but the last commits before a power loss or kernel crash may
        be lost. The database is never corrupted either way.

        Raises:
            ConfigError: ``os`` on PostgreSQL, whose durability is the server's own
                ``synchronous_commit`` setting.
        """
        if sync not in _SQLITE_SYNCHRONOUS:
            raise ConfigError(f"audit_sync must be 'full' or 'os', not {sync!r}")
        if self.is_postgresql:
            if sync != "full":
                raise ConfigError(
                    "audit_sync = 'os' applies to SQLite only; on PostgreSQL durability is "
                    "the server's synchronous_commit setting"
                )
            return
        if sync == self.sync:
            return
        with self._write_lock:
            self._sqlite_pragmas["synchronous"] = _SQLITE_SYNCHRONOUS[sync]
            self.sync = sync
        # Pooled connections keep the pragma they were opened with: reopen them.
        self.engine.dispose()

    @property
    def is_postgresql(self) -> bool:
        """True for PostgreSQL, False for SQLite."""
        return self.engine.dialect.name == "postgresql"

    @property
    def description(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """Yield a connection in a read transaction (a consistent snapshot on SQLite).

        Raises:
            StoreError: The store is closed or the database failed.
        """
        self._check_open()
        try:
            with self.engine.connect() as connection, connection.begin():
                yield connection
        except SQLAlchemyError as exc:
            raise self._error("read", exc) from exc

    @contextmanager
    def writing(self, *, lock: int | None = None, durable: bool = True) -> Iterator[Connection]:
        """Yield a connection in a write transaction that commits when the block ends.

        Args:
            lock: On PostgreSQL, an advisory lock key taken first, held until commit or
                rollback: every node that takes the same key is serialised. SQLite needs
                none, as ``BEGIN IMMEDIATE`` already excludes every other writer.
            durable: False lets a SQLite commit return without an fsync (``synchronous=
                NORMAL`` for this transaction): it survives the process being killed,
                not a power loss. For state that is written behind a decision anyway
                (session context, baselines), where an fsync per change would only
                queue the audit trail's group commit behind it. Ignored on PostgreSQL.

        Raises:
            StoreError: The store is closed, or the database failed. Then nothing of the
                transaction was written, with one exception no client can rule out: a
                PostgreSQL connection lost during COMMIT leaves the outcome unknown. For
                the audit trail that errs the safe way: a record may exist for a decision
                its caller answered ``deny`` to, never the reverse.
        """
        self._check_open()
        with self._write_lock:
            self._check_open()
            try:
                with self.engine.connect() as connection:
                    if self.is_postgresql:
                        # Each statement reads the newest committed data, so the head read
                        # after the advisory lock is the real head, even where the server's
                        # default isolation is REPEATABLE READ (whose snapshot would predate
                        # the lock wait). The seq primary key would refuse a fork anyway.
                        connection.execution_options(isolation_level="READ COMMITTED")
                    else:
                        connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
                    relaxed = not durable and not self.is_postgresql and self.sync == "full"
                    driver: Any = connection.connection.driver_connection
                    if relaxed:
                        # On the driver connection, before BEGIN (SQLAlchemy would autobegin
                        # a transaction around it); SQLite applies it from the next commit.
                        driver.execute("PRAGMA synchronous=NORMAL")
                    try:
                        with connection.begin():
                            if lock is not None and self.is_postgresql:
                                connection.execute(
                                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock}
                                )
                            yield connection
                    finally:
                        if relaxed:
                            driver.execute(
                                f"PRAGMA synchronous={self._sqlite_pragmas['synchronous']}"
                            )
            except SQLAlchemyError as exc:
                raise self._error("write", exc) from exc

    def read_row(
        self, statement: Select[Any], parameters: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """Return the first row of a small key read, or None.

        ``statement`` is built once (bound values as ``bindparam`` names) and
        ``parameters`` gives them per call. On the decision path a primary-key read
        through SQLAlchemy costs ~200 µs of Python, almost all of it statement
        compilation, result wrapping and pool bookkeeping around a ~5 µs SQLite lookup.
        On SQLite the statement is compiled once and run on a plain driver connection
        kept per thread, in autocommit mode: one statement is its own consistent
        snapshot, and WAL readers never wait for the writer. PostgreSQL runs it the
        ordinary way (the network round trip dominates there).

        Raises:
            StoreError: The store is closed or the database failed.
        """
        self._check_open()
        if self.is_postgresql:
            with self.reading() as connection:
                row = connection.execute(statement, dict(parameters)).first()
            return None if row is None else tuple(row)
        sql = self._compiled.get(statement)
        if sql is None:
            sql = str(statement.compile(dialect=_SQLITE_NAMED))
            self._compiled[statement] = sql
        reader = getattr(self._readers, "connection", None)
        try:
            if reader is None:
                reader = self._open_reader()
            return reader.execute(sql, parameters).fetchone()  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            raise StoreError(
                f"database read failed at {self.description}: {type(exc).__name__}: {exc}"
            ) from exc

    def _open_reader(self) -> sqlite3.Connection:
        reader = sqlite3.connect(
            self.engine.url.database or "",
            timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,  # closed from another thread by close()
        )
        reader.execute("PRAGMA query_only=1")
        with self._write_lock:
            self._reader_connections.append(reader)
        self._readers.connection = reader
        return reader

    def insert_or_ignore(self, table: Table) -> Insert:
        """Return ``INSERT ... ON CONFLICT DO NOTHING`` on the table's primary key."""
        key = [column.name for column in table.primary_key]
        if self.is_postgresql:
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)

    def upsert(self, table: Table, values: Mapping[str, Any]) -> Insert:
        """Return an insert of ``values`` that replaces the row with the same primary key."""
        key = [column.name for column in table.primary_key]
        if self.is_postgresql:
            pg_insert = postgresql.insert(table).values(dict(values))
            changed = {name: pg_insert.excluded[name] for name in values if name not in key}
            return pg_insert.on_conflict_do_update(index_elements=key, set_=changed)
        lite_insert = sqlite.insert(table).values(dict(values))
        changed = {name: lite_insert.excluded[name] for name in values if name not in key}
        return lite_insert.on_conflict_do_update(index_elements=key, set_=changed)

    def ping(self) -> bool:
        """Return whether a trivial query succeeds (a readiness probe)."""
        try:
            with self.reading() as connection:
                connection.execute(text("SELECT 1"))
        except StoreError:
            return False
        return True

    def close(self) -> None:
        """Refuse further use and close pooled connections (waits for a running write)."""
        with self._write_lock:
            self._closed = True
            readers, self._reader_connections = self._reader_connections, []
        for reader in readers:
            reader.close()
        self.engine.dispose()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {self.description} is closed")

    def _error(self, action: str, exc: SQLAlchemyError) -> StoreError:
        # The driver's own message, not SQLAlchemy's, which appends the SQL text.
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return StoreError(
            f"database {action} failed at {self.description}: {type(cause).__name__}: {cause}"
        )
