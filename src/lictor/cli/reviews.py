"""``lictor reviews``: list, show, approve and deny held actions, through the HTTP API.

These commands talk to a running ``lictor serve`` with a person's bearer token
(``--url``/``LICTOR_URL``, ``--token``/``LICTOR_TOKEN``), never to the database, so the
server enforces who may review (the ``reviewer`` role) and that nobody approves an
action taken by or for themselves.

Helpers from :mod:`lictor.cli.main` are imported when a command runs (see
:mod:`lictor.cli.serve`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from lictor.sdk.client import LictorClient
    from lictor.service.reviews import Review

__all__ = ["TokenOpt", "UrlOpt", "api_client", "reviews_app"]

reviews_app = typer.Typer(
    help="List, show, approve and deny actions held for human review.", no_args_is_help=True
)

DEFAULT_URL = "http://127.0.0.1:8470"

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="LICTOR_URL", help="The Lictor server.", show_envvar=True),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="LICTOR_TOKEN",
        help="Your bearer token (a reviewer's to approve or deny).",
        show_envvar=True,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


class StatusFilter(StrEnum):
    """Which reviews ``list`` shows."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"
    ALL = "all"


@contextmanager
def api_client(url: str, token: str | None) -> Iterator[LictorClient]:
    """Open an SDK client for the server, refusing to go on without a token."""
    from lictor.errors import ConfigError
    from lictor.sdk.client import LictorClient

    if not token:
        raise ConfigError("give a bearer token with --token or LICTOR_TOKEN")
    with LictorClient(url, token) as client:
        yield client


def _show(reviews: list[Review], as_json: bool, title: str) -> None:
    from rich.table import Table

    from lictor.cli.main import out

    if as_json:
        out.print_json(json.dumps([r.to_json() for r in reviews]))
        return
    table = Table(title=title)
    table.add_column("review", no_wrap=True)
    for column in ("status", "agent", "principal", "tool", "why", "expires"):
        table.add_column(column)
    for review in reviews:
        wire = review.to_json()
        why = "; ".join(dict.fromkeys(r.message or r.rule for r in review.reasons))
        table.add_row(
            review.review_id,
            review.status.value,
            review.agent_id,
            review.principal_id or "",
            review.tool,
            why,
            wire["expires_at"],
        )
    out.print(table)


def _detail(review: Review, as_json: bool) -> None:
    from lictor.cli.main import out

    if as_json:
        out.print_json(json.dumps(review.to_json()))
        return
    wire = review.to_json()
    lines = [
        f"review     {review.review_id}  [{review.status.value}]",
        f"agent      {review.agent_id}",
        f"principal  {review.principal_id or '-'}",
        f"tool       {review.tool}",
        f"arguments  {json.dumps(review.request.get('arguments'), ensure_ascii=False)}",
        f"digest     {review.arguments_digest}",
        f"policy     {review.policy_version}",
        f"decision   {review.decision_id}",
        f"opened     {wire['created_at']}   expires {wire['expires_at']}",
    ]
    lines.extend(f"why        {r.rule}: {r.message}" for r in review.reasons)
    context = review.request.get("context") or {}
    if isinstance(context, dict) and context.get("task"):
        lines.append(f"task       {context['task']}")
    if review.reviewer:
        lines.append(f"verdict    by {review.reviewer} at {wire['resolved_at']}: {review.comment}")
    if review.consumed_by:
        lines.append(f"used by    decision {review.consumed_by} at {wire['consumed_at']}")
    out.print("\n".join(lines), markup=False, highlight=False)


@reviews_app.command("list")
def list_reviews(
    status: Annotated[
        StatusFilter, typer.Option("--status", help="Which reviews (default: pending).")
    ] = StatusFilter.PENDING,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List reviews, oldest first (pending ones by default)."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), api_client(url, token) as client:
        found = client.list_reviews(
            None if status is StatusFilter.ALL else status.value, agent, limit
        )
    _show(found, as_json, f"{len(found)} reviews ({status.value})")


@reviews_app.command("show")
def show(
    review_id: Annotated[str, typer.Argument(help="The review id (from the decision).")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one review: the exact action, why it is held, and any verdict."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), api_client(url, token) as client:
        review = client.get_review(review_id)
    _detail(review, as_json)


CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="Why (kept in the audit trail).")]


@reviews_app.command("approve")
def approve(
    review_id: Annotated[str, typer.Argument(help="The review to approve.")],
    comment: CommentOpt,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve: the agent's identical retry is allowed, once."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), api_client(url, token) as client:
        review = client.approve_review(review_id, comment)
    _detail(review, as_json)


@reviews_app.command("deny")
def deny(
    review_id: Annotated[str, typer.Argument(help="The review to deny.")],
    comment: CommentOpt,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deny: the held action stays refused."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), api_client(url, token) as client:
        review = client.deny_review(review_id, comment)
    _detail(review, as_json)
