"""Tool-definition pinning: a tool the model sees is a tool a person (or first sight) approved.

Rules this module keeps:

1. A tool's identity is the SHA-256 of the canonical JSON of its ``name``,
   ``description`` and ``inputSchema`` (:func:`tool_digest`). Anything else the
   upstream sends (annotations, output schema) does not steer the model's choice of
   arguments and is not pinned.
2. A pinned tool whose digest changes ("rug pull": an upstream swaps a harmless
   description for a malicious one after it was approved) is blocked: hidden from
   ``tools/list`` and refused on ``tools/call``, until approved again.
3. A description that addresses the model rather than describing the tool
   (:data:`INJECTION_PATTERNS`: "ignore previous instructions", ``<IMPORTANT>``,
   "do not tell the user", reading ``~/.ssh`` or secrets ...) is blocked on first sight,
   even with trust on first use. The patterns are a tripwire for known tool-poisoning
   payloads, not a proof of safety: **an approved tool is trusted, so approve only
   definitions a person has read.**
4. A blocked definition that changes back to the approved digest is approved again:
   it is exactly what a person approved.

The manifest is a JSON file a person may edit; :func:`load_manifest` and
:func:`save_manifest` are the only I/O here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from lictor.core.audit.canonical import canonical_json
from lictor.core.decisions import format_time
from lictor.errors import ConfigError, NotFound

MANIFEST_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class InjectionPattern:
    """A documented sign that tool metadata is talking to the model, not describing a tool."""

    id: str
    description: str
    regex: re.Pattern[str]


def _pattern(id: str, description: str, regex: str) -> InjectionPattern:
    return InjectionPattern(id, description, re.compile(regex, re.IGNORECASE | re.DOTALL))


INJECTION_PATTERNS: Final[tuple[InjectionPattern, ...]] = (
    _pattern(
        "ignore-instructions",
        "tells the model to ignore, forget or override earlier instructions",
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|"
        r"all|any|other|system)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines)",
    ),
    _pattern(
        "instruction-tag",
        "pseudo-markup that poisoned tools use to smuggle orders (<IMPORTANT>, <system> ...)",
        r"<\s*/?\s*(important|system|instructions?|secret|hidden|admin|sudo)\b[^>]{0,20}>",
    ),
    _pattern(
        "conceal-from-user",
        "asks the model to hide something from the user",
        r"\b(do\s+not|don'?t|never|without)\s+(tell|telling|inform|informing|mention|mentioning|"
        r"reveal|revealing|show|showing|notify|notifying|alert|alerting)\b[^.\n]{0,40}\buser\b",
    ),
    _pattern(
        "sensitive-files",
        "points at credential files: SSH keys, cloud and tool credentials, .env files",
        r"(~|\$home|%userprofile%|/home/[^/\s]+|/root)?/?\.(ssh|aws|gnupg|kube|docker|netrc|"
        r"npmrc|pypirc|git-credentials|config/gcloud)\b|\bid_(rsa|dsa|ecdsa|ed25519)\b|"
        r"(^|[\s\"'`/])\.env\b|/etc/(passwd|shadow)\b",
    ),
    _pattern(
        "secrets-request",
        "asks for secrets, credentials or environment variables to be passed along or gathered"
        " (a tool that merely reads a secret it is for does not match)",
        r"\b(send|include|pass|upload|exfiltrate|append|leak|forward|attach|copy|post|embed)\b"
        r"[^.\n]{0,60}\b(api[\s_-]?keys?|secrets?|passwords?|credentials?|private[\s_-]?keys?|"
        r"access[\s_-]?tokens?|environment\s+variables|env\s+vars)\b|"
        r"\b(read|collect|gather|list|dump)\b[^.\n]{0,40}\b(all\s+(the\s+)?(secrets|credentials|"
        r"passwords|api[\s_-]?keys)|environment\s+variables|env\s+vars)\b",
    ),
    _pattern(
        "persona-override",
        "tries to re-define the model's role or instructions",
        r"\byou\s+are\s+now\b|\bnew\s+instructions\b|\bsystem\s+prompt\b|\bact\s+as\s+(an?\s+)?"
        r"(admin|root|developer\s+mode)",
    ),
    _pattern(
        "tool-shadowing",
        "gives orders about how other tools must be used",
        r"\b(when|before|after|instead\s+of)\b[^.\n]{0,30}\b(calling|using|invoking)\b[^.\n]{0,30}"
        r"\b(any|all|the|other)\b[^.\n]{0,20}\btools?\b[^.\n]{0,40}\b(must|always|first|also)\b",
    ),
    _pattern(
        "hidden-characters",
        "invisible or direction-changing characters that hide text from a human reviewer",
        "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]",
    ),
)
"""The patterns checked by :func:`scan`, each with an id used in findings and logs."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One pattern that matched, where (a JSON-pointer-like path), and the matched text."""

    pattern: str
    where: str
    excerpt: str

    def to_json(self) -> dict[str, str]:
        """Return the JSON form (manifest and audit)."""
        return {"pattern": self.pattern, "where": self.where, "excerpt": self.excerpt}


def pinned_fields(name: str, description: str | None, input_schema: Mapping[str, Any]) -> Any:
    """Return what a pin covers: the upstream's own name, description and input schema."""
    return {"name": name, "description": description or "", "inputSchema": input_schema}


def tool_digest(name: str, description: str | None, input_schema: Mapping[str, Any]) -> str:
    """Return ``sha256:<hex>`` of the canonical JSON of the pinned fields."""
    blob = canonical_json(pinned_fields(name, description, input_schema))
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _strings(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}/{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}/{i}")


def scan(
    description: str | None, input_schema: Mapping[str, Any], title: str | None = None
) -> tuple[Finding, ...]:
    """Return the :data:`INJECTION_PATTERNS` found in a tool's model-facing text.

    The input schema is scanned whole, since parameter descriptions, titles, enum values
    and defaults reach the model just as the tool description does.
    """
    texts = [("/description", description or ""), ("/title", title or "")]
    texts.extend(_strings(input_schema, "/inputSchema"))
    findings = []
    for where, text in texts:
        for pattern in INJECTION_PATTERNS:
            match = pattern.regex.search(text)
            if match is not None:
                start = max(0, match.start() - 20)
                excerpt = text[start : match.end() + 20].encode("unicode_escape").decode()
                findings.append(Finding(pattern.id, where, excerpt[:160]))
    return tuple(findings)


class PinStatus(StrEnum):
    """A pin either lets its tool through or holds it back."""

    APPROVED = "approved"
    BLOCKED = "blocked"


class PinEvent(StrEnum):
    """What an assessment found, for the log and the audit trail."""

    PINNED = "tool_pinned"
    CHANGED = "tool_definition_changed"
    SUSPICIOUS = "tool_description_suspicious"
    UNAPPROVED = "tool_not_approved"
    RESTORED = "tool_definition_restored"


@dataclass(frozen=True, slots=True)
class Pin:
    """The manifest entry of one namespaced tool.

    ``digest`` is the approved definition (None if never approved); ``pending_digest`` is
    the definition seen now that is waiting for approval.
    """

    status: PinStatus
    digest: str | None = None
    pending_digest: str | None = None
    reason: str = ""
    findings: tuple[Finding, ...] = ()
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "status": self.status.value,
            "digest": self.digest,
            "pending_digest": self.pending_digest,
            "reason": self.reason,
            "findings": [f.to_json() for f in self.findings],
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one tool definition: may the model see and call it?"""

    name: str
    visible: bool
    reason: str = ""
    event: PinEvent | None = None
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every pin, by namespaced tool name. Immutable: assessing returns a new manifest."""

    pins: Mapping[str, Pin] = field(default_factory=dict)

    def assess(
        self,
        name: str,
        digest: str,
        findings: tuple[Finding, ...],
        *,
        trust_on_first_use: bool,
        now: datetime,
    ) -> tuple[Manifest, Assessment]:
        """Assess one definition as seen now; return the updated manifest and the verdict."""
        pin = self.pins.get(name)
        at = format_time(now)
        why = "; ".join(f"{f.pattern} in {f.where}" for f in findings)
        if pin is not None and pin.digest == digest:
            if pin.status is PinStatus.APPROVED:
                return self, Assessment(name, True)
            restored = Pin(PinStatus.APPROVED, digest, updated_at=at)
            return self._with(name, restored), Assessment(
                name, True, "definition is the approved one again", PinEvent.RESTORED
            )
        if pin is not None and pin.status is PinStatus.BLOCKED and pin.pending_digest == digest:
            return self, Assessment(name, False, pin.reason, None, pin.findings)
        if pin is None and not findings and trust_on_first_use:
            pinned = Pin(PinStatus.APPROVED, digest, updated_at=at)
            return self._with(name, pinned), Assessment(name, True, "", PinEvent.PINNED)
        if pin is not None and pin.digest is not None:
            event = PinEvent.CHANGED
            reason = "the tool definition changed since it was approved"
        elif findings:
            event = PinEvent.SUSPICIOUS
            reason = "the tool description contains instructions aimed at the model"
        else:
            event = PinEvent.UNAPPROVED
            reason = "the tool is not in the approved manifest"
        if why:
            reason += f" ({why})"
        blocked = Pin(
            PinStatus.BLOCKED,
            pin.digest if pin is not None else None,
            pending_digest=digest,
            reason=reason,
            findings=findings,
            updated_at=at,
        )
        return self._with(name, blocked), Assessment(name, False, reason, event, findings)

    def approve(self, names: Iterable[str], *, now: datetime) -> Manifest:
        """Approve the definitions now pending for ``names``.

        Raises:
            NotFound: a name has no pin.
        """
        pins = dict(self.pins)
        for name in names:
            pin = pins.get(name)
            if pin is None:
                raise NotFound("tool pin", name)
            if pin.status is PinStatus.APPROVED:
                continue
            pins[name] = Pin(PinStatus.APPROVED, pin.pending_digest, updated_at=format_time(now))
        return Manifest(pins)

    def blocked(self) -> list[str]:
        """Return the names of blocked tools, sorted."""
        return sorted(n for n, p in self.pins.items() if p.status is PinStatus.BLOCKED)

    def _with(self, name: str, pin: Pin) -> Manifest:
        return Manifest({**self.pins, name: pin})

    def to_json(self) -> dict[str, Any]:
        """Return the file form."""
        return {
            "version": MANIFEST_VERSION,
            "tools": {name: self.pins[name].to_json() for name in sorted(self.pins)},
        }


def parse_manifest(data: object, source: str = "manifest") -> Manifest:
    """Validate the file form of a manifest.

    Raises:
        ConfigError: the manifest is malformed (it says where).
    """
    if not isinstance(data, Mapping) or data.get("version") != MANIFEST_VERSION:
        raise ConfigError(f"{source}: expected {{'version': {MANIFEST_VERSION}, 'tools': {{...}}}}")
    tools = data.get("tools", {})
    if not isinstance(tools, Mapping):
        raise ConfigError(f"{source}: 'tools' must be an object")
    pins = {}
    for name, raw in tools.items():
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: tools.{name} must be an object")
        try:
            status = PinStatus(raw.get("status", PinStatus.BLOCKED.value))
        except ValueError:
            raise ConfigError(
                f"{source}: tools.{name}.status must be approved or blocked"
            ) from None
        digest = raw.get("digest")
        pending = raw.get("pending_digest")
        for key, value in (("digest", digest), ("pending_digest", pending)):
            if value is not None and not (isinstance(value, str) and value.startswith("sha256:")):
                raise ConfigError(f"{source}: tools.{name}.{key} must be 'sha256:<hex>' or null")
        if status is PinStatus.APPROVED and digest is None:
            raise ConfigError(f"{source}: tools.{name} is approved but has no digest")
        findings = tuple(
            Finding(str(f.get("pattern", "")), str(f.get("where", "")), str(f.get("excerpt", "")))
            for f in raw.get("findings", [])
            if isinstance(f, Mapping)
        )
        pins[str(name)] = Pin(
            status,
            digest,
            pending,
            str(raw.get("reason", "")),
            findings,
            str(raw.get("updated_at", "")),
        )
    return Manifest(pins)


def load_manifest(path: Path) -> Manifest:
    """Read a manifest; a missing file is an empty manifest.

    Raises:
        ConfigError: the file is unreadable or malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest()
    except OSError as exc:
        raise ConfigError(f"cannot read tool manifest {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return parse_manifest(data, str(path))


def save_manifest(path: Path, manifest: Manifest) -> None:
    """Write a manifest atomically (a reader never sees half a file).

    Raises:
        ConfigError: the file cannot be written.
    """
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write tool manifest {path}: {exc.strerror}") from None
