"""Argument provenance: where did each destination and amount of a call come from?

A value can come from, most trusted first:

- ``task``: the human's request (``context.task``);
- ``trusted``: context the operator vouches for, such as the allowlists in the agent's
  inventory ``attributes``;
- ``tool_output:<tool>``: the output of an earlier call in the session. **Untrusted**: a
  web page, a mail or a document the agent read can carry injected instructions, and a
  payee that only appears there may have been chosen by an attacker;
- ``unknown``: none of these.

Rules:

1. **Pure and total.** Any JSON arguments, task, trusted context and outputs give a
   :class:`Provenance`; nothing raises.
2. **Matching.** Text is NFKC-normalised and case-folded. A string value is found in a
   source when, with surrounding punctuation trimmed, it equals a white-space separated
   token of the source, a word inside a token (letters, digits, ``_``, ``-`` and inner
   dots, as :func:`~lictor.core.policy.functions.mentions` reads words), an e-mail
   address or a URL host in it. Account and phone numbers also match on their digits
   alone (``+49 (30) 1234-567`` is ``4930 1234 567``), IBANs on their compact form. The
   task is matched the same way. Numbers are matched by
   :func:`~lictor.core.policy.functions.mentions` (the function policies use, so the same
   number parsing: ``10000`` is in "send 10,000"), and so are multi-word strings, which
   are not single tokens. For single-token strings the token rule agrees with
   ``mentions`` on word boundaries (``acme.example`` is not in ``evil-acme.example``).
3. **Bounded.** Each source is its first :data:`MAX_SOURCE_CHARS` characters (JSON is
   flattened by :func:`~lictor.core.risk.detect.flatten_text`), with at most
   :data:`MAX_TOKENS_PER_SOURCE` tokens and :data:`MAX_NUMBER_KEYS_PER_SOURCE` number
   keys; an index keeps the :data:`MAX_OUTPUTS` most recent outputs (values seen only in
   older ones become ``unknown``). One index thus holds at most 33 x 3,072 keys.
4. **Cheap to ask.** Adding an output costs time linear in its size (it is tokenised
   once); tracing a single-token value costs a few dictionary lookups (the task's tokens
   are cached per task text). Only amounts and multi-word values call ``mentions``, once
   per source; its number parsing is cached per text by the policy module.
5. **Deterministic.** Origins are listed task first, then sources in the order they were
   added; caps cut the end of a text, never depending on hash order.

``session.provenance`` for policies is :meth:`Provenance.to_cel`. The built-in
:data:`UNTRUSTED_DESTINATION_RULE` is :func:`review_untrusted_destinations`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.policy.functions import domain, mentions
from lictor.core.risk.arguments import ArgumentReading, Destination, read_arguments
from lictor.core.risk.detect import find_ibans, flatten_text, is_valid_iban

__all__ = [
    "MAX_ATOMS_PER_SOURCE",
    "MAX_NUMBER_KEYS_PER_SOURCE",
    "MAX_OUTPUTS",
    "MAX_SOURCE_CHARS",
    "MAX_TOKENS_PER_SOURCE",
    "UNTRUSTED_DESTINATION_RULE",
    "Origin",
    "OriginKind",
    "Provenance",
    "ProvenanceIndex",
    "ToolOutput",
    "TracedValue",
    "looks_side_effecting",
    "review_untrusted_destinations",
    "source_labels",
    "trace_provenance",
]

# Tuples, not ``str | int``: a union in ``isinstance`` is rebuilt on every call.
_SCALARS: Final = (str, int, float)

MAX_SOURCE_CHARS: Final = 32_768
MAX_TOKENS_PER_SOURCE: Final = 2_048
MAX_NUMBER_KEYS_PER_SOURCE: Final = 1_024
MAX_ATOMS_PER_SOURCE: Final = MAX_TOKENS_PER_SOURCE + MAX_NUMBER_KEYS_PER_SOURCE
MAX_OUTPUTS: Final = 32

UNTRUSTED_DESTINATION_RULE: Final = "lictor/untrusted-destination"
"""The built-in rule: **a side-effecting call whose destination came only from the
output of earlier tool calls is held for review** (:func:`review_untrusted_destinations`).
Written in CEL, if the evaluator exposes :meth:`Provenance.values_to_cel` as
``session.value_sources``, for a mail tool::

    arguments.to.exists(r,
        session.value_sources[r.lowerAscii()].all(s, s.startsWith('tool_output:')))
"""


class OriginKind(StrEnum):
    """Where a value came from."""

    TASK = "task"
    TRUSTED = "trusted"
    TOOL_OUTPUT = "tool_output"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Origin:
    """One place a value was found; tool outputs name the tool and its decision."""

    kind: OriginKind
    tool: str = ""
    decision_id: str = ""

    @property
    def label(self) -> str:
        """The CEL-facing name: ``task``, ``trusted``, ``tool_output:<tool>``, ``unknown``."""
        if self.kind is OriginKind.TOOL_OUTPUT:
            return f"tool_output:{self.tool}"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """The output of an earlier call in the session, as reported."""

    tool: str
    decision_id: str
    output: Any


class TracedValue(NamedTuple):
    """One argument with the origins of its value (empty origins: ``unknown``).

    A named tuple rather than a frozen dataclass: one is built per decision, and a
    tuple is about three times cheaper to build.
    """

    path: str
    value: str | int | float
    origins: tuple[Origin, ...]
    destination: Destination | None = None

    @property
    def sources(self) -> list[str]:
        """Sorted distinct origin labels, or ``["unknown"]``."""
        return source_labels(self.origins)

    @property
    def is_untrusted_only(self) -> bool:
        """True when the value was found, and only in tool outputs."""
        return bool(self.origins) and all(o.kind is OriginKind.TOOL_OUTPUT for o in self.origins)


@dataclass(frozen=True, slots=True)
class Provenance:
    """The traced destinations and amounts of one call."""

    values: tuple[TracedValue, ...] = ()

    def to_cel(self) -> dict[str, list[str]]:
        """Return ``{argument path: [source, ...]}``, e.g. ``{"to.0": ["task"]}``.

        Paths are dotted (``payee.iban``, ``recipients.1``); a key that itself holds a
        dot is ambiguous, which is acceptable for a mapping meant for reading.
        """
        out: dict[str, list[str]] = {}
        for traced in self.values:
            out[traced.path] = sorted({*out.get(traced.path, ()), *traced.sources})
        return out

    def values_to_cel(self) -> dict[str, list[str]]:
        """Return ``{value: [source, ...]}`` for traced string values, keys case-folded.

        For a CEL condition over a list (``arguments.to.all(r, 'task' in
        session.value_sources[r.lowerAscii()])``) where paths are awkward; strings only,
        since CEL map keys here are strings.
        """
        out: dict[str, list[str]] = {}
        for traced in self.values:
            if isinstance(traced.value, str):
                key = _fold(traced.value)
                out[key] = sorted({*out.get(key, ()), *traced.sources})
        return out

    def untrusted_destinations(self) -> tuple[TracedValue, ...]:
        """The destinations found only in tool outputs."""
        return tuple(v for v in self.values if v.destination is not None and v.is_untrusted_only)

    def sources_of(self, value: object) -> list[str]:
        """Return the sources of a traced argument value (``["unknown"]`` if not traced).

        Strings compare after case-folding, numbers by value.
        """
        found: set[Origin] = set()
        for traced in self.values:
            if _same_value(traced.value, value):
                found.update(traced.origins)
        return source_labels(found)


def source_labels(origins: Iterable[Origin]) -> list[str]:
    """Sorted distinct labels of ``origins``, or ``["unknown"]`` when there are none."""
    return sorted({o.label for o in origins}) or [OriginKind.UNKNOWN.value]


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, str) and isinstance(b, str):
        return _fold(a) == _fold(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return False


@dataclass(frozen=True, slots=True)
class _Source:
    origin: Origin
    text: str
    atoms: frozenset[str]


_TRUSTED_SEQ: Final = -1


@dataclass(frozen=True, slots=True)
class ProvenanceIndex:
    """The trusted context and recent tool outputs of one session, ready to trace against.

    Build it once per session and add each output as its report arrives
    (:meth:`with_output`); every method returns a new index.
    """

    sources: Mapping[int, _Source] = field(default_factory=lambda: MappingProxyType({}))
    lookup: Mapping[str, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))
    next_seq: int = 0

    def with_trusted(self, trusted: Any) -> ProvenanceIndex:
        """Return the index with ``trusted`` (any JSON, e.g. agent attributes) as trusted."""
        text = flatten_text(trusted, max_chars=MAX_SOURCE_CHARS)
        source = _Source(Origin(OriginKind.TRUSTED), text, _atoms(text))
        return self._replace_source(_TRUSTED_SEQ, source, self.next_seq)

    def with_output(self, tool: str, decision_id: str, output: Any) -> ProvenanceIndex:
        """Return the index with one more tool output (the oldest goes past MAX_OUTPUTS)."""
        text = flatten_text(output, max_chars=MAX_SOURCE_CHARS)
        source = _Source(Origin(OriginKind.TOOL_OUTPUT, tool, decision_id), text, _atoms(text))
        index = self._replace_source(self.next_seq, source, self.next_seq + 1)
        outputs = sorted(seq for seq in index.sources if seq != _TRUSTED_SEQ)
        while len(outputs) > MAX_OUTPUTS:
            index = index._replace_source(outputs.pop(0), None, index.next_seq)
        return index

    def _replace_source(self, seq: int, source: _Source | None, next_seq: int) -> ProvenanceIndex:
        sources = dict(self.sources)
        lookup = dict(self.lookup)
        old = sources.pop(seq, None)
        if old is not None:
            for atom in old.atoms:
                rest = lookup[atom] - {seq}
                if rest:
                    lookup[atom] = rest
                else:
                    del lookup[atom]
        if source is not None:
            sources[seq] = source
            single = frozenset((seq,))
            for atom in source.atoms:
                have = lookup.get(atom)
                lookup[atom] = single if have is None else have | single
        return ProvenanceIndex(MappingProxyType(sources), MappingProxyType(lookup), next_seq)

    def trace(
        self,
        arguments: Mapping[str, Any],
        *,
        task: str = "",
        reading: ArgumentReading | None = None,
    ) -> Provenance:
        """Trace every destination-like and amount-like argument.

        Pass ``reading`` when the arguments were already read
        (:func:`~lictor.core.risk.arguments.read_arguments`) to walk them once.
        """
        if reading is None:
            reading = read_arguments(arguments)
        trace = self.trace_value
        values = [
            TracedValue(d.path, d.value, trace(d.value, task=task), d) for d in reading.destinations
        ]
        if reading.amounts:
            values += [
                TracedValue(a.path, a.value, trace(a.value, task=task)) for a in reading.amounts
            ]
        return Provenance(tuple(values))

    def untrusted(self, reading: ArgumentReading, *, task: str = "") -> Provenance:
        """The destinations found only in tool outputs: ``trace(...).untrusted_destinations()``.

        Cheaper for the common cases: a single-token destination that no source holds, or
        that the trusted context holds, cannot be untrusted-only, so the task is read only
        for destinations that nothing but tool outputs mention.
        """
        found: list[TracedValue] = []
        lookup = self.lookup
        for dest in reading.destinations:
            value = dest.value
            keys = _value_keys(value) if len(value) <= _CACHED_CHARS else ()
            if keys and " " not in keys[0]:
                hits: set[int] = set()
                for key in keys:
                    seqs = lookup.get(key)
                    if seqs is not None:
                        hits.update(seqs)
                if not hits or _TRUSTED_SEQ in hits:
                    continue
            traced = TracedValue(dest.path, value, self.trace_value(value, task=task), dest)
            if traced.is_untrusted_only:
                found.append(traced)
        return Provenance(tuple(found))

    def trace_value(self, value: object, *, task: str = "") -> tuple[Origin, ...]:
        """Return where one value (string or number) was found: task, trusted, outputs."""
        if isinstance(value, bool) or not isinstance(value, _SCALARS):
            return ()
        if len(task) > MAX_SOURCE_CHARS:
            task = task[:MAX_SOURCE_CHARS]
        if isinstance(value, str):
            if len(value) > _CACHED_CHARS:
                keys = _keys_of(value[:MAX_SOURCE_CHARS])
            else:
                keys = _value_keys(value)
            if not keys:
                return ()
            lookup = self.lookup
            hits: frozenset[int] = frozenset()
            for key in keys:
                found = lookup.get(key)
                if found is not None:
                    hits = hits | found if hits else found
            in_task = bool(task) and not _task_atoms(task).isdisjoint(keys)
            if " " in keys[0]:
                # Atoms are single tokens; a multi-word value needs the text itself.
                in_task = in_task or (bool(task) and _mentions(task, value))
                hits = hits | {seq for seq, s in self.sources.items() if _mentions(s.text, value)}
        else:
            in_task = bool(task) and _mentions(task, value)
            hits = frozenset(seq for seq, s in self.sources.items() if _mentions(s.text, value))
        if not hits:
            return _TASK_ONLY if in_task else ()
        sources = self.sources
        found_in = tuple([sources[seq].origin for seq in sorted(hits)])
        return (_TASK_ORIGIN, *found_in) if in_task else found_in


_TASK_ORIGIN: Final = Origin(OriginKind.TASK)
_TASK_ONLY: Final = (_TASK_ORIGIN,)


def trace_provenance(
    arguments: Mapping[str, Any],
    *,
    task: str = "",
    trusted: Any = None,
    outputs: Iterable[ToolOutput] = (),
) -> Provenance:
    """Trace a call's arguments against its task, trusted context and earlier outputs.

    A one-shot convenience; a session should keep a :class:`ProvenanceIndex` instead.
    """
    index = ProvenanceIndex()
    if trusted is not None:
        index = index.with_trusted(trusted)
    for output in outputs:
        index = index.with_output(output.tool, output.decision_id, output.output)
    return index.trace(arguments, task=task)


_EFFECT_WORDS: Final = frozenset(
    {
        "send", "post", "publish", "reply", "forward", "email", "mail", "sms", "message",
        "notify", "invite", "share", "pay", "payment", "payments", "transfer", "wire",
        "refund", "charge", "purchase", "buy", "order", "book", "write", "create",
        "update", "delete", "remove", "upload", "export", "put", "patch", "move",
        "rename", "deploy", "exec", "execute", "run", "push", "merge", "commit",
        "approve", "submit", "grant", "revoke", "webhook",
    }
)  # fmt: skip
_READ_WORDS: Final = frozenset(
    {
        "get", "read", "list", "search", "fetch", "find", "query", "lookup", "look",
        "view", "show", "describe", "check", "count", "preview", "browse", "download",
    }
)  # fmt: skip
_TOOL_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def looks_side_effecting(tool: str) -> bool:
    """Guess from its name whether a tool changes the world (``send_email``, ``payments.transfer``).

    A default for when the inventory or policy does not say. A read-only verb
    (``get``, ``read``, ``search``, ``fetch`` ...) wins, so ``read_message`` and
    ``get_payments`` are not side-effecting while ``send_message`` and ``refund`` are.
    """
    words = {w.lower() for w in _TOOL_WORDS.findall(tool[:256])}
    return not words & _READ_WORDS and bool(words & _EFFECT_WORDS)


def review_untrusted_destinations(provenance: Provenance, *, side_effecting: bool) -> Reason | None:
    """Return the built-in review reason when a side effect targets an untrusted destination.

    ``None`` when the call has no side effect or every destination came from the task,
    trusted context, or nowhere (``unknown`` is the baseline's business: a first-time
    destination signal).
    """
    if not side_effecting:
        return None
    untrusted = provenance.untrusted_destinations()
    if not untrusted:
        return None
    parts = []
    for traced in untrusted[:3]:
        where = ", ".join(sorted({f"{o.tool} (decision {o.decision_id})" for o in traced.origins}))
        noun = traced.destination.kind.noun if traced.destination is not None else "value"
        parts.append(
            f"{noun} {traced.value} (argument {traced.path}) appeared only in the output of {where}"
        )
    more = f" and {len(untrusted) - 3} more" if len(untrusted) > 3 else ""
    message = (
        "; ".join(parts) + more + ", not in the task or trusted context: it may have been injected"
    )
    return Reason(UNTRUSTED_DESTINATION_RULE, Outcome.REVIEW, message, ReasonCode.RISK)


# -- matching -----------------------------------------------------------------------

_TRIM: Final = "\"'`()[]{}<>,;:!?.*"
_WORD_RUN = re.compile(r"\w(?:[\w-]|\.(?=\w))*")
_EMAIL_IN = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}(?![\w-])"
)
_DIGIT_RUN = re.compile(r"[0-9](?:[ ./()\-]{0,2}[0-9])*")
_NON_DIGITS = re.compile(r"[^0-9]")
_PLAIN_WORD = re.compile(r"\w+")  # a token that is one word has no smaller words in it
_NUMBERISH = re.compile(r"[+(]?[0-9][0-9 ().\-/]*")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_MIN_DIGITS: Final = 6
_CACHED_CHARS: Final = 512  # longer values are not kept in the lookup-key cache
_MAX_DIGITS: Final = 34
_MAX_GROUPS: Final = 6


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _mentions(text: str, value: object) -> bool:
    """``mentions`` made total: it is written for CEL's typed calls."""
    try:
        return mentions(text, value)
    except (ValueError, OverflowError, RecursionError):
        return False


@lru_cache(maxsize=4096)
def _value_keys(value: str) -> tuple[str, ...]:
    return _keys_of(value)


def _keys_of(value: str) -> tuple[str, ...]:
    """The normalised forms under which a value is looked up; the trimmed value first."""
    folded = _fold(value)
    keys: list[str] = []
    core = folded.strip(_TRIM)
    if core:
        keys.append(core)
    if core.startswith("mailto:"):
        keys.append(core[len("mailto:") :].split("?", 1)[0])
    keys.extend(_EMAIL_IN.findall(core) if "@" in core and " " in core else ())
    if "://" in core:
        keys.append(core.rstrip("/"))
    compact = re.sub(r"[ \-]", "", folded).upper()
    if _IBAN_SHAPE.fullmatch(compact) and is_valid_iban(compact):
        keys.append("~" + compact)
    elif _NUMBERISH.fullmatch(folded):
        digits = "".join(ch for ch in folded if ch.isdigit())
        if len(digits) >= _MIN_DIGITS:
            keys.append("#" + digits)
    return tuple(dict.fromkeys(k for k in keys if k))


def _atoms(text: str) -> frozenset[str]:
    """Every normalised form a value found in ``text`` could take, within the caps.

    Tokens and number keys are collected in text order and each cap cuts the *end* of
    the text, so the result does not depend on hash order (string hashes are randomised
    per process).
    """
    folded = _fold(text)
    tokens: dict[str, None] = {}
    for chunk in folded.split(" "):
        core = chunk.strip(_TRIM)
        if not core:
            continue
        tokens[core] = None
        if "://" in core:
            tokens[core.rstrip("/")] = None
            host = domain(core)
            if host:
                tokens[host] = None
        if "@" in core:
            tokens.update(dict.fromkeys(_EMAIL_IN.findall(core)))
            if core.startswith("mailto:"):
                tokens[core[len("mailto:") :].split("?", 1)[0]] = None
        if not _PLAIN_WORD.fullmatch(core):
            tokens.update(dict.fromkeys(_WORD_RUN.findall(core)))
        if len(tokens) >= MAX_TOKENS_PER_SOURCE:
            break
    atoms = list(tokens)[:MAX_TOKENS_PER_SOURCE]
    # Account numbers, also written in groups across tokens ("DE89 3704 0044 ..."), and
    # IBANs: their own budget, so a long page of words cannot crowd them out.
    numbers: dict[str, None] = {}
    for match in _DIGIT_RUN.finditer(folded):
        run = match.group(0)
        if len(run) >= _MIN_DIGITS:
            numbers.update(dict.fromkeys(_digit_keys(run)))
            if len(numbers) >= MAX_NUMBER_KEYS_PER_SOURCE:
                break
    numbers.update(dict.fromkeys("~" + iban for iban in find_ibans(folded)))
    atoms.extend(list(numbers)[:MAX_NUMBER_KEYS_PER_SOURCE])
    return frozenset(atoms)


def _digit_keys(run: str) -> list[str]:
    """``#digits`` of every window of up to six space-separated groups of a digit run.

    "IBAN 2041 1234 5678" and "pay 100 12345678" are single runs; the account number is
    one of their windows (``#12345678``). Windows hold 6 to 34 digits (34: the longest
    IBAN).
    """
    if " " not in run:
        digits = _NON_DIGITS.sub("", run)
        return ["#" + digits] if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS else []
    groups = [_NON_DIGITS.sub("", group) for group in run.split(" ")]
    keys = []
    for start in range(len(groups)):
        digits = ""
        for group in groups[start : start + _MAX_GROUPS]:
            digits += group
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) >= _MIN_DIGITS:
                keys.append("#" + digits)
    return keys


@lru_cache(maxsize=256)
def _task_atoms(task: str) -> frozenset[str]:
    return _atoms(task)
