"""Shared constants and helpers of the HTTP API tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from lictor.service.ports import Role

REPO = Path(__file__).resolve().parents[3]
FINANCE = REPO / "examples" / "finance"
# A Wednesday, 10:00 in Berlin: inside the finance policy's business hours.
NOW = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get(
    "LICTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Tokens:
    """One token per role, plus agent tokens for a second agent and an unknown one."""

    agent: str
    other_agent: str
    unknown_agent: str
    admin: str
    auditor: str
    reviewer: str

    def for_role(self, role: Role) -> str:
        return {
            Role.AGENT: self.agent,
            Role.ADMIN: self.admin,
            Role.AUDITOR: self.auditor,
            Role.REVIEWER: self.reviewer,
        }[role]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_type(response: httpx.Response) -> str:
    """Return the problem ``type`` of a problem+json response (and check it is one)."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return str(body["type"])


def slug(name: str) -> str:
    return f"urn:lictor:problem:{name}"
