"""Cross-replica invalidation over PostgreSQL ``LISTEN``/``NOTIFY``.

Replicas cache some answers briefly (credential lookups for up to a second). When a
credential is revoked, rotated or expired on one replica or from the CLI, the store
sends ``NOTIFY lictor_credentials, '<subject>'`` in the same transaction; every replica
runs a :class:`ChangeListener` that drops its cached entries for that subject as soon as
the notification arrives (milliseconds after the commit), so the subject's next request
is checked against the store again. SQLite has no such channel: one node, whose
in-process changes drop the cache directly; a change made by another process (the CLI)
reaches the server within the cache's one second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

__all__ = ["CREDENTIALS_CHANNEL", "ChangeListener", "notify"]

log = logging.getLogger("lictor.store.notify")

CREDENTIALS_CHANNEL: Final = "lictor_credentials"
_RECONNECT_SECONDS: Final = 1.0
_POLL_SECONDS: Final = 0.1  # how soon close() is noticed; a blocking read, not a spin


def notify(connection: Connection, channel: str, payload: str) -> None:
    """Queue a notification inside the caller's transaction (sent at commit; PG only)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )


class ChangeListener:
    """A thread that LISTENs on a channel and calls ``callback(payload)`` for each message.

    It reconnects after a lost connection; while it is disconnected, callers fall back
    to their cache's own expiry (one second for credentials). ``callback`` runs on this
    thread and must be quick.
    """

    def __init__(self, url: str, channel: str, callback: Callable[[str], None]) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._channel = channel
        self._callback = callback
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lictor-listen-{channel}", daemon=True
        )

    def start(self, wait_seconds: float = 5.0) -> ChangeListener:
        """Start listening; wait until the LISTEN is in place (or ``wait_seconds``)."""
        self._thread.start()
        self._listening.wait(wait_seconds)
        return self

    def close(self) -> None:
        """Stop the thread (it notices within :data:`_POLL_SECONDS`)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f'LISTEN "{self._channel}"')
                    self._listening.set()
                    while not self._stop.is_set():
                        for message in connection.notifies(timeout=_POLL_SECONDS):
                            try:
                                self._callback(message.payload)
                            except Exception:  # a broken callback must not stop listening
                                log.exception("listener callback failed on %s", self._channel)
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning("LISTEN %s lost (%s); reconnecting", self._channel, exc)
                self._stop.wait(_RECONNECT_SECONDS)
