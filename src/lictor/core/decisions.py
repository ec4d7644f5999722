"""Decisions: the answer to an action request, and the result report that follows it.

Field names are the v1 wire contract (ARCHITECTURE.md). A decision always carries the
reasons that made it, so a person can read *why* without re-running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from inspect import signature
from typing import Any

from lictor.errors import InvalidToolCall

JSONValue = Any


class Outcome(StrEnum):
    """The three answers. Their order is their strength: deny > review > allow."""

    ALLOW = "allow"
    REVIEW = "review"
    DENY = "deny"

    @property
    def strength(self) -> int:
        """Rank used to combine outcomes: the strongest wins."""
        return _STRENGTH[self]


_STRENGTH = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.DENY: 2}


class ReasonCode(StrEnum):
    """Why a reason is in a decision: a rule fired, or Lictor itself decided."""

    RULE = "rule"
    EVALUATION_ERROR = "evaluation_error"
    DEFAULT_DENY = "default_deny"
    INVENTORY = "inventory"
    AGENT_STATUS = "agent_status"
    UNKNOWN_AGENT = "unknown_agent"
    RISK = "risk"
    REVIEW_VERDICT = "review_verdict"
    MONITOR = "monitor"
    DELEGATION = "delegation"


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule (or built-in check) that decided, with its effect and message."""

    rule: str
    effect: Outcome
    message: str = ""
    code: ReasonCode = ReasonCode.RULE

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {
            "rule": self.rule,
            "effect": self.effect.value,
            "message": self.message,
            "code": self.code.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> Reason:
        """Parse the wire form."""
        return cls(
            rule=str(data["rule"]),
            effect=Outcome(data["effect"]),
            message=str(data.get("message", "")),
            code=ReasonCode(data.get("code", ReasonCode.RULE.value)),
        )


def _slot_setters(cls: type) -> tuple[Callable[[object, object], None], ...]:
    """The slot descriptors' own setters of a frozen dataclass's fields, in field order.

    The ``__init__`` that ``dataclass`` writes for a frozen class sets each field through
    ``object.__setattr__``, which looks the name up again for every field; an ``__init__``
    that calls the slots' setters directly builds the same object (still frozen: an
    assignment goes through the class's ``__setattr__``, which refuses) in about half the
    time. Such an ``__init__`` must take the fields in order, which is checked here, once.
    """
    names = [f.name for f in fields(cls)]
    if list(signature(cls.__dict__["__init__"]).parameters)[1:] != names:
        raise TypeError(f"{cls.__name__}.__init__ must take its fields in order: {names}")
    return tuple(cls.__dict__[name].__set__ for name in names)


@dataclass(frozen=True, slots=True)
class RiskSignal:
    """One behavioural anomaly, with its weight in [0, 1] and a human explanation."""

    kind: str
    detail: str
    score: float = 0.0

    def __init__(self, kind: str, detail: str, score: float = 0.0) -> None:
        # See ``_slot_setters``: a scored call builds several of these.
        _SIGNAL_KIND(self, kind)
        _SIGNAL_DETAIL(self, detail)
        _SIGNAL_SCORE(self, score)

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {"kind": self.kind, "detail": self.detail, "score": self.score}

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> RiskSignal:
        """Parse the wire form."""
        return cls(
            kind=str(data["kind"]),
            detail=str(data.get("detail", "")),
            score=float(data.get("score", 0.0)),
        )


_SIGNAL_KIND, _SIGNAL_DETAIL, _SIGNAL_SCORE = _slot_setters(RiskSignal)


@dataclass(frozen=True, slots=True)
class Risk:
    """Combined risk score in [0, 1] and the signals behind it."""

    score: float = 0.0
    signals: tuple[RiskSignal, ...] = ()

    def __init__(self, score: float = 0.0, signals: tuple[RiskSignal, ...] = ()) -> None:
        _RISK_SCORE(self, score)
        _RISK_SIGNALS(self, signals)

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {"score": self.score, "signals": [s.to_json() for s in self.signals]}

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> Risk:
        """Parse the wire form."""
        return cls(
            score=float(data.get("score", 0.0)),
            signals=tuple(RiskSignal.from_json(s) for s in data.get("signals", ())),
        )


_RISK_SCORE, _RISK_SIGNALS = _slot_setters(Risk)
_NO_RISK = Risk()
"""The risk of a decision made without one; shared, as a frozen value can be."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one action request.

    ``shadow`` lists reasons from rules in shadow mode: evaluated and recorded ("would
    have denied"), never enforced.
    """

    decision_id: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    policy_version: str
    decided_at: datetime
    risk: Risk = _NO_RISK
    review_id: str | None = None
    shadow: tuple[Reason, ...] = ()

    def __init__(
        self,
        decision_id: str,
        outcome: Outcome,
        reasons: tuple[Reason, ...],
        policy_version: str,
        decided_at: datetime,
        risk: Risk = _NO_RISK,
        review_id: str | None = None,
        shadow: tuple[Reason, ...] = (),
    ) -> None:
        # See ``_slot_setters``: one is built for every decision.
        _DECISION_ID(self, decision_id)
        _DECISION_OUTCOME(self, outcome)
        _DECISION_REASONS(self, reasons)
        _DECISION_POLICY_VERSION(self, policy_version)
        _DECISION_DECIDED_AT(self, decided_at)
        _DECISION_RISK(self, risk)
        _DECISION_REVIEW_ID(self, review_id)
        _DECISION_SHADOW(self, shadow)

    @property
    def allowed(self) -> bool:
        """True only for ``allow``."""
        return self.outcome is Outcome.ALLOW

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form; ``Decision.from_json(d.to_json()) == d``."""
        out: dict[str, JSONValue] = {
            "decision_id": self.decision_id,
            "outcome": self.outcome.value,
            "reasons": [r.to_json() for r in self.reasons],
            "risk": self.risk.to_json(),
            "policy_version": self.policy_version,
            "decided_at": format_time(self.decided_at),
        }
        if self.review_id is not None:
            out["review_id"] = self.review_id
        if self.shadow:
            out["shadow"] = [r.to_json() for r in self.shadow]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> Decision:
        """Parse the wire form."""
        return cls(
            decision_id=str(data["decision_id"]),
            outcome=Outcome(data["outcome"]),
            reasons=tuple(Reason.from_json(r) for r in data.get("reasons", ())),
            risk=Risk.from_json(data.get("risk") or {}),
            review_id=data.get("review_id"),
            policy_version=str(data["policy_version"]),
            decided_at=parse_time(str(data["decided_at"])),
            shadow=tuple(Reason.from_json(r) for r in data.get("shadow", ())),
        )


(
    _DECISION_ID,
    _DECISION_OUTCOME,
    _DECISION_REASONS,
    _DECISION_POLICY_VERSION,
    _DECISION_DECIDED_AT,
    _DECISION_RISK,
    _DECISION_REVIEW_ID,
    _DECISION_SHADOW,
) = _slot_setters(Decision)


class ResultStatus(StrEnum):
    """Whether the allowed action ran successfully."""

    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Effect:
    """A downstream effect of an action (``email_sent`` to ``bob@corp.example``)."""

    kind: str
    target: str = ""

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {"kind": self.kind, "target": self.target}


@dataclass(frozen=True, slots=True)
class ResultReport:
    """What happened after an allowed action ran."""

    decision_id: str
    status: ResultStatus
    output: JSONValue = None
    labels: tuple[str, ...] = ()
    effects: tuple[Effect, ...] = ()

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {
            "decision_id": self.decision_id,
            "status": self.status.value,
            "output": self.output,
            "labels": list(self.labels),
            "effects": [e.to_json() for e in self.effects],
        }


def parse_result(data: object, *, decision_id: str | None = None) -> ResultReport:
    """Validate an untrusted result report.

    ``decision_id`` comes from the URL over HTTP; when given, the body may omit it but
    must not contradict it.

    Raises:
        InvalidToolCall: with a pointer to the bad field.
    """
    if not isinstance(data, Mapping):
        raise InvalidToolCall("expected an object", pointer="/")
    unknown = sorted(set(data) - {"decision_id", "status", "output", "labels", "effects"})
    if unknown:
        raise InvalidToolCall(f"unknown field {unknown[0]!r}", pointer=f"/{unknown[0]}")
    body_id = data.get("decision_id")
    if body_id is not None and not isinstance(body_id, str):
        raise InvalidToolCall("expected a string", pointer="/decision_id")
    if decision_id is not None and body_id is not None and body_id != decision_id:
        raise InvalidToolCall("does not match the decision in the URL", pointer="/decision_id")
    did = decision_id or body_id
    if not did:
        raise InvalidToolCall("decision_id is required", pointer="/decision_id")
    try:
        status = ResultStatus(str(data.get("status")))
    except ValueError:
        raise InvalidToolCall("must be 'ok' or 'error'", pointer="/status") from None
    labels = data.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InvalidToolCall("expected a list of strings", pointer="/labels")
    effects_raw = data.get("effects") or []
    if not isinstance(effects_raw, list):
        raise InvalidToolCall("expected a list", pointer="/effects")
    effects = []
    for i, item in enumerate(effects_raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("kind"), str):
            raise InvalidToolCall("expected {kind, target}", pointer=f"/effects/{i}")
        target = item.get("target", "")
        if not isinstance(target, str):
            raise InvalidToolCall("expected a string", pointer=f"/effects/{i}/target")
        effects.append(Effect(kind=item["kind"], target=target))
    return ResultReport(
        decision_id=did,
        status=status,
        output=data.get("output"),
        labels=tuple(labels),
        effects=tuple(effects),
    )


def format_time(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with milliseconds (``…T14:03:22.418Z``)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: Lictor timestamps are aware UTC")
    utc = moment.astimezone(UTC)
    # Formatted by hand: strftime costs several times as much, twice per decision.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without time zone: {text!r}")
    return moment.astimezone(UTC)
