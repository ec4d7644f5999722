"""Lictor's CEL functions and the CEL environment every condition compiles in.

Functions are pure and total: on input they cannot make sense of they return ``false``
(or ``""`` for ``domain``) rather than raise, so a hostile argument cannot turn a
``deny`` rule into an evaluation error that hides which rule should have fired.
Evaluation errors still deny (fail closed) — this only keeps the reason precise.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cel_expr_python import cel
from cel_expr_python.ext import ext_math, ext_optional, ext_strings

#: The variables a condition can read. All are ``dyn`` (requests are JSON) but ``now``,
#: a timestamp.
VARIABLES = (
    "request",
    "tool",
    "server",
    "arguments",
    "principal",
    "delegation",
    "context",
    "resource",
    "agent",
    "session",
    "time",
    "now",
)


def glob(value: str, pattern: str) -> bool:
    """Shell-style match, case-sensitive: ``glob('payments.refund', 'payments.*')``."""
    return fnmatch.fnmatchcase(value, pattern)


def glob_list(value: str, patterns: Sequence[object]) -> bool:
    """Return whether ``value`` matches any pattern in the list."""
    return any(isinstance(p, str) and fnmatch.fnmatchcase(value, p) for p in patterns)


def domain(value: str) -> str:
    """Return the lower-case host of an e-mail address, URL or bare host name.

    ``domain('Bob@Corp.Example') == 'corp.example'``,
    ``domain('https://evil.example:8443/x') == 'evil.example'``. Unparseable → ``""``.
    """
    text = value.strip()
    if not text:
        return ""
    if "://" in text:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return ""
        return host.rstrip(".").lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    host = text.split("/", 1)[0].split(":", 1)[0]
    return host.strip().rstrip(".").lower()


def in_domain(value: str, parent: str) -> bool:
    """Return whether the host of ``value`` is ``parent`` or one of its subdomains."""
    host = domain(value)
    want = parent.strip().lstrip(".").rstrip(".").lower()
    if not host or not want:
        return False
    return host == want or host.endswith("." + want)


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,_' ]*(?:\.\d+)?")


@lru_cache(maxsize=1024)
def _numbers_in(text: str) -> frozenset[float]:
    found: set[float] = set()
    for token in _NUMBER.findall(text):
        cleaned = re.sub(r"[,_' ]", "", token)
        try:
            found.add(float(cleaned))
        except ValueError:
            continue
    return frozenset(found)


@lru_cache(maxsize=1024)
def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def mentions(text: str, value: Any) -> bool:
    """Return whether the human's text mentions ``value``.

    Strings match case-insensitively as whole words (``bob@x.io`` is mentioned in
    "mail Bob@X.io the report", ``10`` is not mentioned by "100"). Numbers match by value,
    so ``10000`` is mentioned by "send 10,000" and "send 10000.00". A list is mentioned
    when every element is. Empty values are never mentioned.
    """
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return float(value) in _numbers_in(text)
    if isinstance(value, list | tuple):
        return bool(value) and all(mentions(text, v) for v in value)
    if not isinstance(value, str):
        return False
    needle = _fold(value)
    if not needle:
        return False
    haystack = _fold(text)
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before_ok = start == 0 or not _is_word(haystack[start - 1]) or not _is_word(needle[0])
        after_ok = end == len(haystack) or not _is_word(haystack[end]) or not _is_word(needle[-1])
        if before_ok and after_ok:
            return True
        start = haystack.find(needle, start + 1)
    return False


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def in_cidr(address: str, network: str) -> bool:
    """Return whether an IP address lies in a CIDR block; malformed input → false."""
    try:
        return ipaddress.ip_address(address.strip()) in ipaddress.ip_network(
            network.strip(), strict=False
        )
    except ValueError:
        return False


def _decls() -> list[Any]:
    t = cel.Type
    return [
        cel.FunctionDecl(
            "glob",
            [
                cel.Overload("glob_string_string", t.BOOL, [t.STRING, t.STRING], impl=glob),
                cel.Overload("glob_string_list", t.BOOL, [t.STRING, t.List(t.DYN)], impl=glob_list),
            ],
        ),
        cel.FunctionDecl(
            "domain", [cel.Overload("domain_string", t.STRING, [t.STRING], impl=domain)]
        ),
        cel.FunctionDecl(
            "in_domain",
            [cel.Overload("in_domain_string_string", t.BOOL, [t.STRING, t.STRING], impl=in_domain)],
        ),
        cel.FunctionDecl(
            "mentions",
            [
                cel.Overload(f"mentions_string_{name}", t.BOOL, [t.STRING, kind], impl=mentions)
                for name, kind in (
                    ("string", t.STRING),
                    ("int", t.INT),
                    ("uint", t.UINT),
                    ("double", t.DOUBLE),
                    ("list", t.List(t.DYN)),
                )
            ],
        ),
        cel.FunctionDecl(
            "in_cidr",
            [cel.Overload("in_cidr_string_string", t.BOOL, [t.STRING, t.STRING], impl=in_cidr)],
        ),
    ]


#: Names of the Lictor-specific functions, for docs and lint.
FUNCTIONS = ("glob", "domain", "in_domain", "mentions", "in_cidr")


@lru_cache(maxsize=1)
def environment() -> Any:
    """Return the shared CEL environment (built once; compiling is thread-safe)."""
    return cel.NewEnv(
        variables={**dict.fromkeys(VARIABLES, cel.Type.DYN), "now": cel.Type.TIMESTAMP},
        functions=_decls(),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(), ext_math.ExtMath()],
    )
