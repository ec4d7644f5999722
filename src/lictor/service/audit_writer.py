"""Group commit for the audit trail, and periodic signed checkpoints.

Invariant: a caller's ``append`` (or the future from ``submit``) completes only after
its entry is committed by the store. Entries that arrive while a commit is running wait
in a queue and go into the next transaction together, so many concurrent decisions
share one fsync. If the store fails, every entry of that batch fails with
``StoreError`` and the caller answers ``deny`` — nothing is acknowledged that is not
on disk.

Checkpoints: after every ``checkpoint_every`` records, or ``checkpoint_seconds`` after
the last checkpoint when records were added, the writer extends its Merkle
accumulator from the store (so records written by other replicas are included) and
stores a signed checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from lictor.core.audit.chain import (
    ChainVerifier,
    Checkpoint,
    CheckpointSigning,
    SealedRecord,
    issue_checkpoint,
)
from lictor.core.decisions import format_time
from lictor.errors import LictorError, StoreError
from lictor.service.ports import AuditStore, Clock

log = logging.getLogger("lictor.audit")

_STOP = object()


class AuditWriter:
    """Implements the ``AuditLog`` port on top of an ``AuditStore`` with group commit."""

    def __init__(
        self,
        store: AuditStore,
        clock: Clock,
        *,
        signer: CheckpointSigning | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        max_batch: int = 1024,
        append_timeout_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self._clock = clock
        self._signer = signer
        self._checkpoint_every = checkpoint_every
        self._checkpoint_seconds = checkpoint_seconds
        self._max_batch = max_batch
        self._timeout = append_timeout_seconds
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._verifier: ChainVerifier | None = None
        self._last_checkpoint_size = 0
        self._last_checkpoint_at = time.monotonic()
        self._lock = threading.Lock()
        self.batches = 0
        self.records_written = 0
        self.failures = 0
        self._listeners: list[Callable[[Sequence[SealedRecord]], None]] = []

    def add_listener(self, listener: Callable[[Sequence[SealedRecord]], None]) -> None:
        """Call ``listener`` with every committed batch (syslog, live feeds).

        Listeners run on the writer thread after the callers were answered; they must
        be quick and must not block. An exception in one is logged and ignored.
        """
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> AuditWriter:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            existing = self.store.checkpoints()
            if existing:
                self._last_checkpoint_size = existing[-1].tree_size
            self._thread = threading.Thread(target=self._run, name="lictor-audit", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, write a final checkpoint, stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
            try:
                self.checkpoint_now()
            except LictorError:
                log.exception("final checkpoint failed")

    @property
    def is_running(self) -> bool:
        """True while the writer thread is alive (readiness)."""
        return self._thread is not None and self._thread.is_alive()

    # -- the AuditLog port ---------------------------------------------------------------

    def submit(self, entry: Mapping[str, Any]) -> Future[SealedRecord]:
        """Queue an entry; the future resolves once it is committed (or fails)."""
        future: Future[SealedRecord] = Future()
        if self._thread is None:
            future.set_exception(StoreError("the audit writer is not running"))
            return future
        self._queue.put((entry, future))
        return future

    def submit_async(self, entry: Mapping[str, Any]) -> asyncio.Future[SealedRecord]:
        """Like :meth:`submit`, for a caller on an event loop (the HTTP server).

        The writer settles every future of one commit that belongs to one loop with a
        single ``call_soon_threadsafe``, where wrapping concurrent futures would wake
        the loop once per record: under load that was 64 wake-ups (each a GIL round
        trip) per group commit.

        Raises:
            RuntimeError: called outside a running event loop.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SealedRecord] = loop.create_future()
        if self._thread is None:
            future.set_exception(StoreError("the audit writer is not running"))
            return future
        self._queue.put((entry, future))
        return future

    def append(self, entry: Mapping[str, Any]) -> None:
        """Persist one entry; return only when it is durable.

        Raises:
            StoreError: the store failed or did not answer in time.
        """
        future = self.submit(entry)
        try:
            future.result(timeout=self._timeout)
        except TimeoutError:
            raise StoreError("the audit store did not commit in time") from None

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the committed decision entry with this id."""
        record = self.store.find_decision(decision_id)
        return record.payload if record is not None else None

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=max(self._checkpoint_seconds, 0.05))
            except queue.Empty:
                self._maybe_checkpoint()
                continue
            batch: list[tuple[Mapping[str, Any], _Waiter]] = []
            item = first
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._maybe_checkpoint(self._commit(batch))

    def _commit(self, batch: list[tuple[Mapping[str, Any], _Waiter]]) -> int | None:
        """Commit one batch and answer its callers; return the trail's size after it.

        The size is the last sealed seq + 1, which was the head when the store held its
        write lock; None when the batch failed.
        """
        started = time.perf_counter()
        try:
            sealed = self.store.append_batch([entry for entry, _ in batch])
        except Exception as exc:  # noqa: BLE001 - any store failure fails the whole batch
            self.failures += 1
            log.critical("audit store failed to commit %d entries: %s", len(batch), exc)
            error = exc if isinstance(exc, StoreError) else StoreError(str(exc))
            _settle([(future, None, error) for _, future in batch])
            return None
        self.batches += 1
        self.records_written += len(sealed)
        _settle([(future, record, None) for (_, future), record in zip(batch, sealed, strict=True)])
        if log.isEnabledFor(logging.DEBUG):
            # The numbers to look at when decisions/s falls short: how many entries share
            # a commit, and how long the commit held the writer.
            log.debug(
                "audit commit: %d records in %.2f ms",
                len(sealed),
                (time.perf_counter() - started) * 1000,
            )
        for listener in self._listeners:
            try:
                listener(sealed)
            except Exception:
                log.exception("audit listener failed")
        return sealed[-1].seq + 1 if sealed else None

    def _maybe_checkpoint(self, size: int | None = None) -> None:
        """Sign a checkpoint when one is due. Never raises: commits must go on.

        Args:
            size: The trail's size if the caller just learned it (after a commit), which
                saves a query per group commit; read from the store otherwise.
        """
        if self._signer is None:
            return
        try:
            if size is None:
                size = self.store.size()  # the seq primary key's max: no payload read
            due_count = size - self._last_checkpoint_size >= self._checkpoint_every
            due_time = (
                size > self._last_checkpoint_size
                and time.monotonic() - self._last_checkpoint_at >= self._checkpoint_seconds
            )
            if due_count or due_time:
                self.checkpoint_now()
        except Exception:
            # A store outage or a trail that no longer verifies must not stop the writer
            # thread: decisions would then be denied until a restart.
            log.exception("checkpoint failed")

    def checkpoint_now(self) -> Checkpoint | None:
        """Catch up with the store and sign a checkpoint over the whole trail now.

        Returns None without a signer or when nothing was added since the last one.
        """
        if self._signer is None:
            return None
        with self._lock:
            if self._verifier is None:
                self._verifier = ChainVerifier()
            canonical = getattr(self.store, "canonical_records", None)
            if canonical is not None:  # the stored hashed bytes: one hash per record
                for seq, prev_hash, payload_json, record_hash in canonical(self._verifier.size):
                    self._verifier.add_canonical(seq, prev_hash, payload_json, record_hash)
            else:
                for record in self.store.records(self._verifier.size):
                    self._verifier.add(record)
            summary = self._verifier.summary()
            if summary.size == 0 or summary.size == self._last_checkpoint_size:
                return None
            checkpoint = issue_checkpoint(
                summary, issued_at=format_time(self._clock.now()), signer=self._signer
            )
            self.store.add_checkpoint(checkpoint)
            self._last_checkpoint_size = summary.size
            self._last_checkpoint_at = time.monotonic()
            return checkpoint


_Waiter = Future[SealedRecord] | asyncio.Future[SealedRecord]
_Outcome = tuple[_Waiter, SealedRecord | None, BaseException | None]


def _settle(outcomes: Sequence[_Outcome]) -> None:
    """Resolve a commit's waiters: thread futures here, loop futures on their loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        future = outcome[0]
        if isinstance(future, asyncio.Future):
            by_loop.setdefault(future.get_loop(), []).append(outcome)
        else:
            _resolve(outcome)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve_all, waiting)


def _resolve_all(outcomes: Sequence[_Outcome]) -> None:
    for outcome in outcomes:
        _resolve(outcome)


def _resolve(outcome: _Outcome) -> None:
    future, record, error = outcome
    if future.done():  # a caller that gave up waiting cancelled it
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(record)  # type: ignore[arg-type]  # a record whenever no error
