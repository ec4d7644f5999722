"""The ``CredentialStore`` contract, run on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contract.backends import Backend
from lictor.errors import Conflict, NotFound
from lictor.service.ports import Credential, CredentialKind, CredentialStore, Role

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def credential(credential_id: str, subject: str = "mail-assistant", **fields: object) -> Credential:
    base = Credential(
        id=credential_id,
        kind=CredentialKind.AGENT,
        subject=subject,
        role=Role.AGENT,
        created_at=T0,
        description="for the mail assistant",
    )
    return replace(base, **fields)  # type: ignore[arg-type]  # test shorthand


def test_add_then_get_returns_the_record_and_hash(credentials: CredentialStore) -> None:
    admin = credential(
        "cred-admin",
        subject="emma@corp.example",
        kind=CredentialKind.ADMIN,
        role=Role.AUDITOR,
        created_at=datetime(2026, 3, 1, 13, 0, 0, 654321, tzinfo=timezone(timedelta(hours=1))),
    )
    credentials.add(admin, "sha256-of-secret")

    found = credentials.get("cred-admin")

    assert found == (admin, "sha256-of-secret")
    assert found[0].created_at == datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)
    assert found[0].is_active
    assert credentials.get("unknown") is None


def test_adding_an_existing_id_is_a_conflict(credentials: CredentialStore) -> None:
    credentials.add(credential("c1"), "hash-1")

    with pytest.raises(Conflict) as caught:
        credentials.add(credential("c1", subject="someone-else"), "hash-2")

    assert (caught.value.kind, caught.value.id) == ("credential", "c1")
    assert credentials.get("c1") == (credential("c1"), "hash-1")


def test_list_is_oldest_first_then_by_id(credentials: CredentialStore) -> None:
    later = T0 + timedelta(microseconds=1)
    credentials.add(credential("c-late", created_at=later), "h")
    credentials.add(credential("c-b"), "h")
    credentials.add(credential("c-a"), "h")
    credentials.add(
        credential("c-other", subject="planner", created_at=T0 - timedelta(days=1)), "h"
    )

    assert [c.id for c in credentials.list()] == ["c-other", "c-a", "c-b", "c-late"]
    assert [c.id for c in credentials.list("mail-assistant")] == ["c-a", "c-b", "c-late"]
    assert credentials.list("nobody") == []


def test_revoke_marks_the_time_once(credentials: CredentialStore) -> None:
    credentials.add(credential("c1"), "hash-1")
    first = T0 + timedelta(hours=1)

    revoked = credentials.revoke("c1", first)
    again = credentials.revoke("c1", first + timedelta(hours=1))

    assert revoked == credential("c1", revoked_at=first)
    assert not revoked.is_active
    assert again.revoked_at == first
    assert credentials.get("c1") == (revoked, "hash-1")
    assert credentials.list() == [revoked]


def test_revoking_an_unknown_id_is_not_found(credentials: CredentialStore) -> None:
    with pytest.raises(NotFound) as caught:
        credentials.revoke("missing", T0)

    assert (caught.value.kind, caught.value.id) == ("credential", "missing")


def test_records_survive_a_restart(backend: Backend) -> None:
    first = backend.open()
    first.credentials.add(credential("c1"), "hash-1")
    first.credentials.revoke("c1", T0 + timedelta(seconds=1))
    first.close()

    found = backend.open().credentials.get("c1")

    assert found == (credential("c1", revoked_at=T0 + timedelta(seconds=1)), "hash-1")
