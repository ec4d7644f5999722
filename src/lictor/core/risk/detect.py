"""Data detectors: which kinds of sensitive data a text or JSON value contains.

Rules, in the order the code relies on them:

1. **Total.** ``detect_labels`` accepts any JSON value (or any Python value made of
   dicts, lists, strings, numbers, booleans and ``None``) and returns a frozenset of
   label names. It never raises; anything it cannot read is ignored.
2. **Bounded.** At most :data:`MAX_SCAN_CHARS` characters are scanned per call, JSON is
   walked at most :data:`MAX_DEPTH` levels deep and :data:`MAX_NODES` values wide. Data
   past the budget is not scanned (a label there is missed, never invented).
3. **Checksums before labels.** An IBAN is labelled only if its country, length and
   ISO 13616 mod-97 check hold; a card number only if its issuer prefix, length and Luhn
   check hold. Random digit strings therefore rarely label.
4. **Linear time.** Every pattern starts at a literal or a boundary (a look-behind) and
   has bounded repetition, so Python's backtracking engine cannot go quadratic on
   hostile text; checksum candidates are capped too (:data:`MAX_CANDIDATES`). Measured
   cost: about 0.3 us per scanned character, so ~20 ms at the 64 KiB cap. Run it on
   result reports, off the decision path.

The detectors are documented regular expressions plus checksums, not a library: the
candidates on PyPI are either heavy (detect-secrets scans files with plugins) or only
do one checksum, and the core takes no third-party dependency but CEL.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "MAX_CANDIDATES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SCAN_CHARS",
    "DataLabel",
    "detect_labels",
    "find_ibans",
    "flatten_text",
    "is_luhn_valid",
    "is_valid_iban",
]

# Tuples, not ``str | int``: a union in ``isinstance`` is rebuilt on every call.
_SEQUENCES: Final = (list, tuple)

MAX_SCAN_CHARS: Final = 65_536
"""Characters scanned per call: a 64 KiB prefix of the text or of the flattened JSON."""

MAX_DEPTH: Final = 32
"""JSON nesting walked; deeper values are skipped (requests are capped at 32 too)."""

MAX_NODES: Final = 10_000
"""JSON values (objects, arrays, scalars) visited per call."""

MAX_CANDIDATES: Final = 512
"""Checksum candidates (IBAN or card-number windows) checked per detector per call.

Hostile text ("1 1 1 1 ...") can offer a candidate every few characters; past this
budget the remaining candidates are not checked, so the work stays bounded."""


class DataLabel(StrEnum):
    """The labels the detectors emit. ``pii.*`` personal, ``financial.*``, ``secret.*``."""

    EMAIL = "pii.email"
    PHONE = "pii.phone"
    IBAN = "financial.iban"
    CARD = "financial.card"
    API_KEY = "secret.api_key"
    PRIVATE_KEY = "secret.private_key"
    PASSWORD = "secret.password"  # noqa: S105 - a label name, not a password


# ISO 13616 IBAN lengths by country (SWIFT IBAN registry).
_IBAN_LENGTHS: Final[Mapping[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# Phones: an international number (+ country code) or the common North American forms.
# Bare digit runs are not labelled: ids, amounts and dates look just the same.
_PHONE = re.compile(
    r"(?<![\w+])\+[0-9](?:[ .-]?\(?[0-9]\)?){6,14}(?![\w])"
    r"|(?<![\w(])\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}(?![\w])"
    r"|(?<![\w-])[0-9]{3}-[0-9]{3}-[0-9]{4}(?![\w-])"
)
_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,32}")
_CARD_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,40}(?![0-9])")
_DIGIT = re.compile(r"[0-9]")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----")
# Issuer-specific token formats, each from the issuer's documentation.
_API_KEYS = re.compile(
    # AWS access key ids (AKIA long-term, ASIA temporary, ...).
    r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}"
    r"(?![A-Z0-9])"
    # GitHub personal/OAuth/user/server/refresh tokens and fine-grained PATs.
    r"|(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])"
    r"|(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,255}"
    # Slack bot/user/app/refresh tokens and incoming-webhook URLs.
    r"|(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,250}"
    r"|hooks\.slack\.com/services/T[A-Z0-9]{6,16}/B[A-Z0-9]{6,16}/[A-Za-z0-9]{16,32}"
    # Google API keys, Stripe live secret/restricted keys.
    r"|(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}"
    r"|(?<![A-Za-z0-9_])[sr]k_live_[0-9A-Za-z]{16,247}"
)
# ``api_key = "..."``, ``"token": "..."`` and the like; the value must look random.
_ASSIGNED_SECRET = re.compile(
    r"(?i)(?<![a-z0-9])(?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|"
    r"client[_-]?secret|access[_-]?token|auth[_-]?token|bearer|token)"
    r"[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?([A-Za-z0-9_\-+/=.~]{16,256})"
)
_ASSIGNED_PASSWORD = re.compile(
    r"(?i)(?<![a-z0-9])(?:password|passwd|pwd)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
    r"([^\s\"',;]{8,128})"
)
_API_KEY_MARKERS: Final = (
    *("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA"),
    *("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "hooks.slack.com"),
    *("AIza", "k_live_"),
)
_SECRET_WORDS: Final = ("key", "secret", "token", "bearer")
_PASSWORD_WORDS: Final = ("passw", "pwd")
_IBAN_DIGITS: Final = str.maketrans({chr(65 + i): str(10 + i) for i in range(26)})
_MIN_SECRET_ENTROPY: Final = 3.5  # bits per character; English words sit near 2.5-3


def detect_labels(value: Any, *, max_chars: int = MAX_SCAN_CHARS) -> frozenset[str]:
    """Return the data labels found in ``value`` (text, or JSON walked leaf by leaf).

    Keys of JSON objects are scanned with their values as ``key: value``, so
    ``{"api_key": "..."}`` is read like the assignment it is.
    """
    text = flatten_text(value, max_chars=max_chars)
    found: set[str] = set()
    if "@" in text and _EMAIL.search(text):
        found.add(DataLabel.EMAIL)
    if _DIGIT.search(text):
        if ("+" in text or "(" in text or "-" in text) and _has_phone(text):
            found.add(DataLabel.PHONE)
        if find_ibans(text):
            found.add(DataLabel.IBAN)
        if _has_card(text):
            found.add(DataLabel.CARD)
    if "PRIVATE KEY-----" in text and _PRIVATE_KEY.search(text):
        found.add(DataLabel.PRIVATE_KEY)
    # Python's regex engine costs ~0.1 us per character per pattern; a substring test
    # is ~100 times cheaper, so each pattern runs only if its literal markers occur.
    lower = text.lower()
    if (any(m in text for m in _API_KEY_MARKERS) and _API_KEYS.search(text)) or (
        any(m in lower for m in _SECRET_WORDS) and _has_assigned_secret(text)
    ):
        found.add(DataLabel.API_KEY)
    if any(m in lower for m in _PASSWORD_WORDS) and _has_password(text):
        found.add(DataLabel.PASSWORD)
    return frozenset(found)


def flatten_text(value: Any, *, max_chars: int = MAX_SCAN_CHARS) -> str:
    """Render a JSON value as searchable text, one ``key: value`` line per leaf.

    Strings are kept verbatim; numbers are written as JSON writes them. The result is at
    most ``max_chars`` characters long. Any value is accepted; unknown types are skipped.
    """
    if isinstance(value, str):
        return value[:max_chars]
    parts: list[str] = []
    used = 0
    for line in _lines(value):
        if used >= max_chars:
            break
        parts.append(line)
        used += len(line) + 1
    return "\n".join(parts)[:max_chars]


def _lines(value: Any) -> Iterator[str]:
    """Yield one line per leaf, depth-first, within the depth and node budgets."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    nodes = 0
    while stack and nodes < MAX_NODES:
        prefix, item, depth = stack.pop()
        nodes += 1
        if isinstance(item, Mapping):
            if depth >= MAX_DEPTH:
                continue
            entries = list(item.items())
            for key, sub in reversed(entries):
                name = key if isinstance(key, str) else ""
                stack.append((name, sub, depth + 1))
            if prefix:
                yield prefix
        elif isinstance(item, _SEQUENCES):
            if depth >= MAX_DEPTH:
                continue
            stack.extend((prefix, sub, depth + 1) for sub in reversed(item))
        else:
            leaf = _scalar_text(item)
            if leaf is None:
                continue
            yield f"{prefix}: {leaf}" if prefix else leaf


def _scalar_text(item: object) -> str | None:
    if isinstance(item, str):
        return item
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        # CPython refuses to print ints of more than 4,300 digits; no detector needs them.
        return str(item) if -(10**60) < item < 10**60 else None
    if isinstance(item, float):
        return repr(item) if math.isfinite(item) else None
    return None


def is_valid_iban(text: str) -> bool:
    """Return whether ``text`` is an IBAN: known country, its length, and mod-97 == 1.

    Spaces are ignored and letters may be in either case (``de89 3704 …`` is valid).
    """
    compact = text.replace(" ", "").upper()
    country = compact[:2]
    if _IBAN_LENGTHS.get(country) != len(compact):
        return False
    if not (compact[2:4].isdigit() and compact.isascii() and compact.isalnum()):
        return False
    # ISO 13616: move the first four characters to the end, letters become 10..35, and
    # the number modulo 97 must be 1.
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def find_ibans(text: str) -> list[str]:
    """Return the valid IBANs in ``text``, compact and upper-case, in order of appearance.

    A candidate is two letters, two digits and up to 32 more letters or digits, optionally
    grouped by single spaces. It is cut to its country's length before the check, so
    ``DE89 3704 0044 0532 0130 00 and more`` still yields ``DE89370400440532013000``.
    """
    found: list[str] = []
    pos = 0
    budget = MAX_CANDIDATES
    while budget > 0 and (match := _IBAN_CANDIDATE.search(text, pos)) is not None:
        budget -= 1
        compact = match.group(0).replace(" ", "").upper()
        length = _IBAN_LENGTHS.get(compact[:2])
        if length is not None and len(compact) >= length and is_valid_iban(compact[:length]):
            found.append(compact[:length])
            pos = match.end()
        else:
            # "ref AB12 DE89 3704 ...": a failed candidate may hide a real IBAN inside it.
            pos = match.start() + 1
    return found


def is_luhn_valid(digits: str) -> bool:
    """Return whether a string of ASCII digits passes the Luhn (mod 10) check."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card_issuer(digits: str) -> bool:
    """Issuer prefixes (ISO/IEC 7812 IIN ranges) and lengths of the major card networks."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649:  # Discover
        return 16 <= n <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if two == 62:  # UnionPay
        return 16 <= n <= 19
    return False


def _has_card(text: str) -> bool:
    """Whether a digit run holds a card number, alone or as a window of its digit groups.

    "order 12 4111 1111 1111 1111" is one run; the card is the window of its last four
    groups. Windows are tried only at group boundaries, at most 41 digits per run and
    :data:`MAX_CANDIDATES` windows per call.
    """
    budget = MAX_CANDIDATES
    for match in _CARD_CANDIDATE.finditer(text):
        groups = re.split(r"[ -]", match.group(0))
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13:
                    if budget <= 0:
                        return False
                    budget -= 1
                    if _is_card(digits):
                        return True
    return False


def _is_card(digits: str) -> bool:
    return len(set(digits)) > 1 and _is_card_issuer(digits) and is_luhn_valid(digits)


def _has_phone(text: str) -> bool:
    for match in _PHONE.finditer(text):
        count = sum(ch.isdigit() for ch in match.group(0))
        if 8 <= count <= 15:
            return True
    return False


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    size = len(value)
    return -sum(c / size * math.log2(c / size) for c in counts.values())


def _has_assigned_secret(text: str) -> bool:
    for match in _ASSIGNED_SECRET.finditer(text):
        secret = match.group(1)
        has_digit = any(ch.isdigit() for ch in secret)
        has_alpha = any(ch.isalpha() for ch in secret)
        if has_digit and has_alpha and _entropy(secret) >= _MIN_SECRET_ENTROPY:
            return True
    return False


_PLACEHOLDERS: Final = frozenset({"redacted", "<redacted>", "changeme", "password", "none", "null"})


def _has_password(text: str) -> bool:
    for match in _ASSIGNED_PASSWORD.finditer(text):
        secret = match.group(1)
        if len(set(secret)) > 2 and secret.casefold() not in _PLACEHOLDERS:
            return True
    return False
