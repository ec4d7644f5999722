"""Prometheus metrics for one server process, in a registry of its own.

A private registry (not prometheus-client's global one) lets several apps live in one
process, as tests do, without "duplicated timeseries" errors. Audit writer figures are
read at scrape time, so the hot path only pays for one counter and one histogram.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lictor.core.audit.chain import SealedRecord
from lictor.core.decisions import Outcome
from lictor.errors import StoreError
from lictor.service.audit_writer import AuditWriter

# Decisions are ~50 µs of evaluation plus a shared group commit (an fsync, ~1-10 ms).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class TrackedAudit:
    """The ``AuditLog`` the Governor writes to: the writer, plus a count of pending entries.

    ``pending`` is what the audit queue-depth gauge reports: entries submitted and not
    yet committed or failed (queued or inside the running commit).
    """

    def __init__(self, writer: AuditWriter, timeout_seconds: float) -> None:
        self.writer = writer
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Entries submitted and not yet resolved."""
        return self._pending

    def submit(self, entry: Mapping[str, Any]) -> Future[SealedRecord]:
        """Queue an entry; the future resolves once it is committed (or fails)."""
        with self._lock:
            self._pending += 1
        future = self.writer.submit(entry)
        future.add_done_callback(self._done)
        return future

    def submit_async(self, entry: Mapping[str, Any]) -> asyncio.Future[SealedRecord]:
        """Queue an entry from the event loop; the future resolves on that loop."""
        with self._lock:
            self._pending += 1
        future = self.writer.submit_async(entry)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._lock:
            self._pending -= 1

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
        return self.writer.find_decision(decision_id)


class _AuditCollector(Collector):
    def __init__(self, audit: TrackedAudit) -> None:
        self._audit = audit

    def collect(self) -> Iterator[Metric]:
        writer = self._audit.writer
        yield CounterMetricFamily(
            "lictor_audit_batches", "Audit group commits that succeeded.", writer.batches
        )
        yield CounterMetricFamily(
            "lictor_audit_records", "Audit records committed.", writer.records_written
        )
        yield CounterMetricFamily(
            "lictor_audit_failures", "Audit group commits that failed.", writer.failures
        )
        yield GaugeMetricFamily(
            "lictor_audit_queue_depth",
            "Audit entries submitted and not yet committed or failed.",
            self._audit.pending,
        )


class Metrics:
    """The process's metrics: decisions by outcome, decision latency, audit writer state."""

    def __init__(self, audit: TrackedAudit) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "lictor_decisions",
            "Decisions answered, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in Outcome:
            self.decisions.labels(outcome=outcome.value)
        self.latency = Histogram(
            "lictor_decision_seconds",
            "Time from a parsed request to a recorded decision, in seconds.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.problems = Counter(
            "lictor_http_problems",
            "Problem responses sent, by problem type slug.",
            ["type"],
            registry=self.registry,
        )
        self.registry.register(_AuditCollector(audit))

    def observe_decision(self, outcome: Outcome, seconds: float) -> None:
        """Count one decision and its latency."""
        self.decisions.labels(outcome=outcome.value).inc()
        self.latency.observe(seconds)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
