"""The Authenticator looks a token up in the store once at a time, however many requests wait.

Under load every request in flight when a cache entry expires would otherwise send its
own lookup to a worker thread; those lookups filled the connection pool that the audit
writer needs for its group commit.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import anyio
import pytest

from lictor.errors import AuthError
from lictor.server.auth import Authenticator
from lictor.service.credentials import Credentials
from lictor.service.memory import FixedClock, MemoryCredentials
from lictor.service.ports import Credential, CredentialKind, Role

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CONCURRENT = 20


class CountingCredentials(MemoryCredentials):
    """The memory store, counting reads and holding each read until released."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.release = threading.Event()

    def get(self, credential_id: str) -> tuple[Credential, str] | None:
        self.reads += 1
        self.release.wait(5)
        return super().get(credential_id)


async def authenticate_all(authenticator: Authenticator, token: str) -> list[object]:
    outcomes: list[object] = []

    async def one() -> None:
        try:
            outcomes.append(await authenticator.authenticate(f"Bearer {token}"))
        except AuthError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENT):
            group.start_soon(one)
    return outcomes


async def test_concurrent_requests_share_one_store_lookup() -> None:
    store = CountingCredentials()
    credentials = Credentials(store, FixedClock(NOW))
    issued = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)
    authenticator = Authenticator(credentials)
    store.release.set()

    outcomes = await authenticate_all(authenticator, issued.token)

    assert store.reads == 1
    assert all(isinstance(o, Credential) and o.subject == "mailer" for o in outcomes)
    assert len(outcomes) == CONCURRENT


async def test_a_refused_lookup_refuses_every_waiter_and_wedges_nothing() -> None:
    store = CountingCredentials()
    credentials = Credentials(store, FixedClock(NOW))
    issued = credentials.issue(CredentialKind.AGENT, "mailer", Role.AGENT)
    credentials.revoke(issued.credential.id)
    authenticator = Authenticator(credentials)
    store.release.set()

    outcomes = await authenticate_all(authenticator, issued.token)

    assert all(isinstance(o, AuthError) for o in outcomes)
    assert len(outcomes) == CONCURRENT
    # Nothing was cached and no lookup is left running: the next request asks again.
    reads = store.reads
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {issued.token}")
    assert store.reads == reads + 1
