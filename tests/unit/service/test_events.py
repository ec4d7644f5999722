"""The event bus hands events to every subscriber and never raises to the emitter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lictor.service.events import Event, EventBus, EventKind, Severity


def _event() -> Event:
    return Event(
        kind=EventKind.AGENT_QUARANTINED,
        at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        severity=Severity.HIGH,
        summary="agent payer quarantined",
        agent_id="payer",
    )


def test_every_subscriber_gets_the_event_even_after_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("sink down")

    bus.subscribe(broken)
    bus.subscribe(lambda event: seen.append(event.summary))
    bus.emit(_event())
    assert seen == ["agent payer quarantined"]
    assert "sink down" in caplog.text


def test_severities_rank_in_declared_order() -> None:
    ranks = [severity.rank for severity in Severity]
    assert ranks == sorted(ranks)
    assert Severity.CRITICAL.rank > Severity.HIGH.rank > Severity.INFO.rank


def test_event_json_is_plain() -> None:
    data = _event().to_json()
    assert data["kind"] == "agent_quarantined"
    assert data["severity"] == "high"
    assert data["at"] == "2026-11-25T12:00:00+00:00"
