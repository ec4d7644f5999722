"""Credential rotation with an overlap window, batched last-use, and cache invalidation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from lictor.cli.credentials import parse_duration
from lictor.errors import AuthError, ConfigError, StoreError
from lictor.server.auth import Authenticator
from lictor.service.credentials import Credentials, UsageRecorder
from lictor.service.memory import FixedClock, MemoryCredentials
from lictor.service.ports import CredentialKind, Role

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryCredentials):
    """Counts batched last-use writes; can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[dict[str, datetime]] = []
        self.failing = False

    def record_use(self, used: Mapping[str, datetime]) -> None:
        if self.failing:
            raise StoreError("database down")
        self.writes.append(dict(used))
        super().record_use(used)


def test_rotation_with_overlap_keeps_the_old_token_until_the_window_ends() -> None:
    clock = FixedClock(NOW)
    credentials = Credentials(MemoryCredentials(), clock)
    old = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)

    new = credentials.rotate(old.credential.id, timedelta(minutes=10))

    assert credentials.authenticate(new.token).subject == "mailer"
    clock.advance(599)
    assert credentials.authenticate(old.token).id == old.credential.id
    clock.advance(1)
    with pytest.raises(AuthError):
        credentials.authenticate(old.token)
    assert credentials.authenticate(new.token).id == new.credential.id


def test_rotation_without_overlap_revokes_at_once_and_a_dead_one_cannot_rotate() -> None:
    credentials = Credentials(MemoryCredentials(), FixedClock(NOW))
    old = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)

    credentials.rotate(old.credential.id)

    with pytest.raises(AuthError):
        credentials.authenticate(old.token)
    with pytest.raises(AuthError):
        credentials.rotate(old.credential.id)


def test_last_use_is_written_in_batches_not_per_request() -> None:
    clock, ticks, store = FixedClock(NOW), Ticks(), CountingStore()
    usage = UsageRecorder(store, flush_seconds=30, monotonic=ticks)
    credentials = Credentials(store, clock, usage=usage)
    issued = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)

    for _ in range(100):
        clock.advance(0.1)
        credentials.authenticate(issued.token)
    assert store.writes == []

    ticks.now = 30
    credentials.authenticate(issued.token)
    assert len(store.writes) == 1
    found = store.get(issued.credential.id)
    assert found is not None
    assert found[0].last_used_at == clock.now()


def test_a_failed_last_use_write_is_retried_with_the_latest_time() -> None:
    clock, store = FixedClock(NOW), CountingStore()
    usage = UsageRecorder(store, flush_seconds=0)
    credentials = Credentials(store, clock, usage=usage)
    issued = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)
    store.failing = True
    credentials.authenticate(issued.token)  # the write fails; the request does not

    store.failing = False
    clock.advance(5)
    usage.seen(issued.credential.id, NOW)  # older than what is pending: ignored
    usage.flush()

    assert store.writes == [{issued.credential.id: NOW}]


async def test_forget_drops_a_subjects_cached_credentials_at_once() -> None:
    clock = FixedClock(NOW)
    credentials = Credentials(MemoryCredentials(), clock)
    authenticator = Authenticator(credentials, ttl_seconds=3600)
    mailer = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)
    reader = credentials.issue(CredentialKind.AGENT, "reader", Role.AGENT)
    await authenticator.authenticate(f"Bearer {mailer.token}")
    await authenticator.authenticate(f"Bearer {reader.token}")
    credentials.revoke(mailer.credential.id)
    credentials.revoke(reader.credential.id)

    authenticator.forget("mailer")

    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {mailer.token}")
    # Not forgotten: still served from the cache until its TTL.
    assert (await authenticator.authenticate(f"Bearer {reader.token}")).subject == "reader"


async def test_a_rotated_credential_stops_on_a_replica_within_the_cache_bound() -> None:
    clock, ticks = FixedClock(NOW), Ticks()
    credentials = Credentials(MemoryCredentials(), clock)
    authenticator = Authenticator(credentials, ttl_seconds=1.0, monotonic=ticks)
    old = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)
    await authenticator.authenticate(f"Bearer {old.token}")
    credentials.rotate(old.credential.id, timedelta(seconds=30))  # as another process would
    ticks.now = 1.0  # the cache entry is refreshed from the store: it now knows the expiry
    assert (await authenticator.authenticate(f"Bearer {old.token}")).subject == "mailer"

    clock.advance(30)  # no store read needed: the cached record's expiry is checked

    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {old.token}")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10x", "m", "-5m", "1h 30m", "31d", "10m5"])
def test_bad_durations_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
