"""Read tool-call arguments: which are destinations, which are amounts, how much is asked.

An argument is *destination-like* when its key names a destination (``to``,
``recipients``, ``url``, ``iban``, ``channel_id``, ``file_id`` ...) **or** its value has
the shape of one on its own (an e-mail address, a URL, a valid IBAN). Each destination
gets a normalised key (``email:bob@corp.example``, ``host:evil.example``,
``iban:DE89370400440532013000``, ``account:12345678``) so the same place written two
ways counts once.

Rules:

1. Pure and total: any JSON arguments give a (possibly empty) tuple; nothing raises.
2. Bounded: at most :data:`MAX_NODES` values are visited, :data:`MAX_DEPTH` levels deep,
   and at most :data:`MAX_DESTINATIONS` destinations are returned. String values longer
   than :data:`MAX_VALUE_CHARS` are never destinations (they are bodies, not addresses).
3. Without a destination key, only self-evident shapes count: bare digit strings are
   too ambiguous (ids, amounts, dates) to be treated as accounts or phone numbers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, NamedTuple

from lictor.core.policy.functions import domain
from lictor.core.risk.detect import is_valid_iban

__all__ = [
    "MAX_DEPTH",
    "MAX_DESTINATIONS",
    "MAX_NODES",
    "MAX_VALUE_CHARS",
    "Amount",
    "ArgumentReading",
    "Destination",
    "DestinationKind",
    "classify_value",
    "find_amounts",
    "find_destinations",
    "read_arguments",
    "requested_items",
]

# Tuples, not ``str | int``: a union in ``isinstance`` is rebuilt on every call.
_SCALARS: Final = (str, int, float)
_SEQUENCES: Final = (list, tuple)

MAX_NODES: Final = 256
MAX_DEPTH: Final = 8
MAX_DESTINATIONS: Final = 32
MAX_VALUE_CHARS: Final = 320


class DestinationKind(StrEnum):
    """What sort of place a destination is; the prefix of its normalised key."""

    EMAIL = "email"
    HOST = "host"
    IBAN = "iban"
    ACCOUNT = "account"
    PHONE = "phone"
    CHANNEL = "channel"
    FILE = "file"
    OTHER = "id"

    @property
    def noun(self) -> str:
        """How to name a destination of this kind in a sentence."""
        return _NOUNS[self]


_NOUNS: Final = {
    DestinationKind.EMAIL: "recipient",
    DestinationKind.HOST: "host",
    DestinationKind.IBAN: "IBAN",
    DestinationKind.ACCOUNT: "account",
    DestinationKind.PHONE: "phone number",
    DestinationKind.CHANNEL: "channel",
    DestinationKind.FILE: "file",
    DestinationKind.OTHER: "destination",
}

# Key-name words that mark a destination, and the kind they suggest. A key is split into
# words on punctuation and camelCase (``recipientEmail`` -> recipient, email).
_KEY_WORDS: Final[Mapping[str, DestinationKind]] = {
    **dict.fromkeys(
        (
            "to", "cc", "bcc", "recipient", "recipients", "email", "emails", "mail",
            "mailto", "reply", "address", "addresses", "forward", "invitee", "invitees",
            "attendee", "attendees", "share", "sharee", "assignee",
        ),
        DestinationKind.EMAIL,
    ),
    **dict.fromkeys(
        (
            "url", "urls", "uri", "link", "href", "endpoint", "webhook", "callback",
            "domain", "host", "hostname", "site", "website", "redirect",
        ),
        DestinationKind.HOST,
    ),
    "iban": DestinationKind.IBAN,
    **dict.fromkeys(
        (
            "account", "accounts", "acct", "routing", "swift", "bic", "wallet",
            "payee", "beneficiary", "creditor", "destination", "dest",
        ),
        DestinationKind.ACCOUNT,
    ),
    **dict.fromkeys(
        ("phone", "mobile", "tel", "telephone", "sms", "msisdn", "whatsapp", "fax"),
        DestinationKind.PHONE,
    ),
    **dict.fromkeys(
        ("channel", "channels", "chat", "room", "conversation"), DestinationKind.CHANNEL
    ),
    **dict.fromkeys(
        (
            "file", "files", "fileid", "document", "doc", "folder", "drive", "bucket",
            "repo", "repository", "path", "filename", "filepath", "sheet", "spreadsheet",
        ),
        DestinationKind.FILE,
    ),
}  # fmt: skip

# Words that make ``address`` a place where people live or goods go, not somewhere data
# can be sent: ``home_address``, ``shippingAddress``. A postal address in an HR or order
# record is personal data, not a destination; reading it as one makes every move a
# "first-time destination". An e-mail address, URL or IBAN under such a key still counts
# by its shape (rule 3).
_POSTAL_WORDS: Final = frozenset(
    {
        "home", "street", "postal", "post", "zip", "shipping", "billing", "mailing",
        "physical", "residential", "residence", "delivery", "office", "work",
    }
)  # fmt: skip

# Keys that carry no meaning of their own and inherit the enclosing key's kind:
# ``"to": [{"address": "bob@x"}]``, ``"payee": {"id": "..."}``.
_GENERIC_KEYS: Final = frozenset({"id", "value", "address", "number", "identifier"})
_AMOUNT_WORDS: Final = frozenset(
    {"amount", "sum", "total", "price", "cost", "fee", "quantity", "qty", "value"}
)
_VOLUME_KEYS: Final = frozenset(
    {
        "limit", "max_results", "max_items", "max_count", "max_rows", "page_size", "per_page",
        "top", "count", "num_results", "n_results",
    }
)  # fmt: skip

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_EMAIL = re.compile(r"[^@\s<>]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}://")
_ANGLE = re.compile(r"<([^<>]*)>")
_HOSTNAME = re.compile(r"(?:[a-z0-9-]{1,63}\.)+[a-z]{2,24}\.?")
_NUMBERISH = re.compile(r"[+(]?[0-9][0-9 ().\-/]*")
_IBANISH = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
#: The fewest characters ``_IBANISH`` matches (2 + 2 + 11).
_SHORTEST_IBAN: Final = 15


@dataclass(frozen=True, slots=True)
class Destination:
    """One destination-like argument: where it sits, what it is, its normalised key."""

    path: str
    kind: DestinationKind
    value: str
    key: str

    def to_json(self) -> dict[str, str]:
        """Return a JSON form (for audit details and explanations)."""
        return {"path": self.path, "kind": self.kind.value, "value": self.value, "key": self.key}


class Amount(NamedTuple):
    """One value-like argument (``amount``, ``total`` ...): its path and its value.

    A named tuple rather than a frozen dataclass: one is built per decision, and a
    tuple is about three times cheaper to build.
    """

    path: str
    value: int | float | str


class ArgumentReading(NamedTuple):
    """What one call's arguments say: its destinations, its amounts, the items it asks for.

    Read it once per request (:func:`read_arguments`) and hand it to both the baseline
    (:class:`~lictor.core.risk.baseline.CallFacts`) and provenance, so the arguments are
    walked once. It is a named tuple rather than a frozen dataclass: one is built per
    decision, and a tuple is about three times cheaper to build.
    """

    destinations: tuple[Destination, ...] = ()
    amounts: tuple[Amount, ...] = ()
    requested_items: int | None = None


def read_arguments(arguments: Mapping[str, Any]) -> ArgumentReading:
    """Walk the arguments once; paths are dotted, list items by index (``to.0``)."""
    walk = _Walk()
    asked: int | None = None
    for key, value in arguments.items():
        if walk.nodes >= MAX_NODES:
            break
        if isinstance(key, str):
            walk.visit(key, key, _key_hint(key), value, 1)
            if (
                type(value) is int  # not bool
                and value >= 0
                and (asked is None or value > asked)
                and _snake(key) in _VOLUME_KEYS
            ):
                asked = value
    return ArgumentReading(tuple(walk.destinations), tuple(walk.amounts), asked)


def find_destinations(arguments: Mapping[str, Any]) -> tuple[Destination, ...]:
    """Return the destination-like arguments, in document order, at most 32."""
    return read_arguments(arguments).destinations


def find_amounts(arguments: Mapping[str, Any]) -> tuple[Amount, ...]:
    """Return value-like arguments: numbers or short strings under an amount-like key."""
    return read_arguments(arguments).amounts


def classify_value(value: object, hint: DestinationKind | None = None) -> Destination | None:
    """Classify one value as a destination, or ``None``; the path is left empty.

    With ``hint`` (the kind its key suggests) account numbers, phone numbers, host names
    and plain ids count; without it only e-mail addresses, URLs and valid IBANs do.
    """
    return _classify(value, hint, "")


def requested_items(arguments: Mapping[str, Any]) -> int | None:
    """Return how many items the call asks for (``limit``, ``max_results`` ...), if said.

    The largest such top-level non-negative integer wins; ``None`` when there is none.
    """
    return read_arguments(arguments).requested_items


class _Walk:
    """One depth-first walk within the node and depth budgets, in document order."""

    __slots__ = ("amounts", "destinations", "nodes")

    def __init__(self) -> None:
        self.destinations: list[Destination] = []
        self.amounts: list[Amount] = []
        self.nodes = 0

    def visit(
        self, path: str, key: str, hint: DestinationKind | None, value: Any, depth: int
    ) -> None:
        if self.nodes >= MAX_NODES:
            return
        self.nodes += 1
        if isinstance(value, _SCALARS):
            if len(self.destinations) < MAX_DESTINATIONS:
                dest = _classify(value, hint, path)
                if dest is not None:
                    self.destinations.append(dest)
            if _is_amount_key(key) and _is_amount(value):
                self.amounts.append(Amount(path, value))
        elif isinstance(value, _SEQUENCES):
            if depth < MAX_DEPTH:
                for i, sub in enumerate(value):
                    self.visit(f"{path}.{i}", key, hint, sub, depth + 1)
        elif isinstance(value, Mapping) and depth < MAX_DEPTH:
            for sub_key, sub in value.items():
                if isinstance(sub_key, str):
                    sub_hint = _key_hint(sub_key)
                    if sub_hint is None and sub_key in _GENERIC_KEYS:
                        sub_hint = hint
                    self.visit(f"{path}.{sub_key}", sub_key, sub_hint, sub, depth + 1)


def _is_amount(value: str | int | float) -> bool:
    if isinstance(value, str):
        return 0 < len(value) <= 64 and any(c.isdigit() for c in value)
    return not isinstance(value, bool)


@lru_cache(maxsize=4096)
def _is_amount_key(key: str) -> bool:
    return bool(_key_words(key) & _AMOUNT_WORDS)


@lru_cache(maxsize=4096)
def _key_words(key: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORDS.findall(key[:64]))


@lru_cache(maxsize=4096)
def _snake(key: str) -> str:
    return "_".join(w.lower() for w in _WORDS.findall(key[:64]))


@lru_cache(maxsize=4096)
def _key_hint(key: str) -> DestinationKind | None:
    """The kind a key suggests, if any; the first matching word wins.

    ``address`` next to a postal word (``home_address``) suggests nothing: see
    :data:`_POSTAL_WORDS`.
    """
    words = [w.lower() for w in _WORDS.findall(key[:64])]
    for word in words:
        kind = _KEY_WORDS.get(word)
        if kind is not None:
            if word in ("address", "addresses") and not _POSTAL_WORDS.isdisjoint(words):
                return None
            return kind
    return None


def _classify(value: object, hint: DestinationKind | None, path: str) -> Destination | None:
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS + 64:
            return None  # a body, not an address; also keeps long strings out of the cache
        if (
            hint is None
            and len(value) < _SHORTEST_IBAN
            and value.isascii()
            and "@" not in value
            and ":" not in value
        ):
            # Without a hint only an e-mail address (an @), a URL (a ://) or an IBAN counts,
            # and NFKC changes no ASCII text: "EUR" or "inv-10" is none of them. Such values
            # vary call by call, so they would mostly miss the cache below.
            return None
        return _classify_at(value, hint, path)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if hint is None or not -(10**30) < value < 10**30:
        return None
    kind = DestinationKind.ACCOUNT if hint is DestinationKind.IBAN else hint
    if kind in (DestinationKind.EMAIL, DestinationKind.HOST):
        kind = DestinationKind.OTHER
    return Destination(path, kind, str(value), f"{kind.value}:{value}")


@lru_cache(maxsize=4096)
def _classify_at(value: str, hint: DestinationKind | None, path: str) -> Destination | None:
    """Cached whole: the same recipient at the same path recurs call after call."""
    found = _classify_text(value, hint)
    return None if found is None else Destination(path, found[0], found[1], found[2])


@lru_cache(maxsize=4096)
def _classify_text(
    value: str, hint: DestinationKind | None
) -> tuple[DestinationKind, str, str] | None:
    """(kind, value as given, normalised key) of a string, or ``None``; pure, so cached."""
    raw = value.strip()
    if not raw or len(raw) > MAX_VALUE_CHARS:
        return None
    text = unicodedata.normalize("NFKC", raw)
    angle = _ANGLE.search(text)
    if angle and "@" in angle.group(1):
        text = angle.group(1).strip()
    folded = text.casefold()
    if folded.startswith("mailto:"):
        folded = folded[len("mailto:") :].split("?", 1)[0]
    if _EMAIL.fullmatch(folded):
        return DestinationKind.EMAIL, raw, f"email:{folded}"
    if _SCHEME.match(folded):
        host = domain(folded)
        if host:
            return DestinationKind.HOST, raw, f"host:{host}"
        return None if hint is None else _plain(hint, raw, folded)
    compact = re.sub(r"[ \-]", "", text).upper()
    if _IBANISH.fullmatch(compact) and is_valid_iban(compact):
        return DestinationKind.IBAN, raw, f"iban:{compact}"
    if hint is None:
        return None
    if _NUMBERISH.fullmatch(text):
        digits = "".join(ch for ch in text if ch.isdigit())
        if hint is DestinationKind.PHONE or (text.startswith("+") and 7 <= len(digits) <= 15):
            return DestinationKind.PHONE, raw, f"phone:{digits}"
        if len(digits) >= 6:
            return DestinationKind.ACCOUNT, raw, f"account:{digits}"
    if hint in (DestinationKind.HOST, DestinationKind.EMAIL) and _HOSTNAME.fullmatch(folded):
        return DestinationKind.HOST, raw, f"host:{folded.rstrip('.')}"
    return _plain(hint, raw, folded)


def _plain(hint: DestinationKind, raw: str, folded: str) -> tuple[DestinationKind, str, str]:
    """A destination with no recognised shape: a channel name, a file id, a payee name."""
    if hint is DestinationKind.FILE:
        return DestinationKind.FILE, raw, f"file:{raw}"
    if hint is DestinationKind.CHANNEL:
        return DestinationKind.CHANNEL, raw, f"channel:{folded}"
    return DestinationKind.OTHER, raw, f"id:{folded}"
