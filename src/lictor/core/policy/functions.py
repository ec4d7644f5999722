"""Lictor's CEL functions and the CEL environment every condition compiles in.

Functions are pure. A *string* they cannot make sense of (an unparseable address or
IP) gives ``false`` (or ``""`` for ``domain``). A value of the *wrong type* (a list where
a string was expected, null) has no overload and is an evaluation error, so the decision
is ``deny``: a recipient list passed where a policy expects one address must not slip
past a deny rule by making its condition quietly false.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_math, ext_optional, ext_strings

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


_ANGLE = re.compile(r"<([^<>]*)>")
_HOST = re.compile(r"^[a-z0-9_.:-]+$")


def domain(value: str) -> str:
    """Return the lower-case host of an e-mail address, URL or bare host name.

    ``domain('Bob@Corp.Example') == 'corp.example'``,
    ``domain('Bob <bob@acme.example>') == 'acme.example'``,
    ``domain('https://evil.example:8443/x') == 'evil.example'``,
    ``domain('[::1]:80') == '::1'``. Anything that is not a host → ``""``.
    """
    text = value.strip()
    angle = _ANGLE.search(text)
    if angle:
        text = angle.group(1).strip()
    if not text:
        return ""
    if any(ch.isspace() or ch in ",;" for ch in text):
        return ""  # several addresses, or prose: not one host
    if "://" in text or text.startswith("[") or ("/" in text and "@" in text):
        # A scheme-less "evil.example/@corp.example" is a path on evil.example.
        try:
            host = urlsplit(text if "://" in text else "//" + text).hostname or ""
        except ValueError:
            return ""
    else:
        if "@" in text:
            text = text.rsplit("@", 1)[1]
        host = text.split("/", 1)[0]
        if host.count(":") == 1:
            host = host.split(":", 1)[0]
    host = host.strip().rstrip(".").lower()
    return host if _HOST.match(host) else ""


def in_domain(value: str, parent: str) -> bool:
    """Return whether the host of ``value`` is ``parent`` or one of its subdomains."""
    host = domain(value)
    want = parent.strip().lstrip(".").rstrip(".").lower()
    if not host or not want:
        return False
    return host == want or host.endswith("." + want)


# A number: digits with optional grouping (1,000 / 1.000 / 1'000 / 1_000 / 1\u202f000)
# and an optional decimal part. A plain space does not group: "5 100 times" is 5 and 100.
_NUMBER = re.compile(r"(?<![\w.,])[-+]?\d+(?:[,.'_\u00a0\u202f]\d+)*")


def _parse_number(token: str) -> float | None:
    """Read grouping and decimal marks the way people write them in either convention."""
    body = re.sub(r"['_\u00a0\u202f]", "", token)
    marks = [ch for ch in body if ch in ",."]
    if marks:
        last = marks[-1]
        head, _, tail = body.rpartition(last)
        other = "," if last == "." else "."
        if marks.count(last) == 1 and (len(tail) != 3 or other in head):
            # "1,000.50", "10.000,00", "12.5": the last mark is the decimal point.
            body = head.replace(other, "") + "." + tail
        else:
            # "10,000" or "1.000.000": grouping only.
            body = body.replace(",", "").replace(".", "")
    try:
        return float(body)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _numbers_in(text: str) -> frozenset[float]:
    found: set[float] = set()
    for token in _NUMBER.findall(text):
        number = _parse_number(token)
        if number is not None:
            found.add(number)
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
        if _is_boundary(haystack, start - 1, needle[0]) and _is_boundary(haystack, end, needle[-1]):
            return True
        start = haystack.find(needle, start + 1)
    return False


def _is_boundary(text: str, index: int, edge: str) -> bool:
    """Whether ``text[index]`` ends a word next to a needle whose outer char is ``edge``.

    Hyphens continue a word, and so does a dot between word characters, so
    ``acme.example`` is not mentioned by ``evil-acme.example`` or ``acme.example.evil``;
    a sentence-ending dot ("mail acme.example.") and an ``@`` are boundaries.
    """
    if index < 0 or index >= len(text) or not _is_word(edge):
        return True
    ch = text[index]
    if _is_word(ch) or ch == "-":
        return False
    if ch == ".":
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        return not (_is_word(before) and _is_word(after))
    return True


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


class SessionFunctions(Protocol):
    """What ``provenance()`` and the window functions read for the call being decided."""

    def provenance(self, value: object) -> list[str]:
        """Sources of a value: ``task``, ``trusted``, ``tool_output:<tool>`` or ``unknown``."""
        ...

    def window_count(self, tools: str, duration: str, scope: str) -> int:
        """Earlier allowed calls of ``tools`` within ``duration`` by the same ``scope``."""
        ...

    def window_sum(self, tools: str, argument: str, duration: str, scope: str) -> float:
        """Sum of the numeric ``argument`` of those calls."""
        ...


# The session's functions for the evaluation running on this thread (or task). Set by
# the evaluator right before CEL runs (``bind_session``); CEL's function values are fixed
# when the environment is built, so per-call state has to reach them this way.
_SESSION: ContextVar[SessionFunctions | None] = ContextVar("lictor_session", default=None)


def bind_session(functions: SessionFunctions | None) -> None:
    """Make ``functions`` answer ``provenance()`` and ``window_*()`` on this thread."""
    _SESSION.set(functions)


def provenance(value: object) -> list[str]:
    """Sorted sources of a value in the session; ``["unknown"]`` without session state."""
    functions = _SESSION.get()
    return ["unknown"] if functions is None else functions.provenance(value)


def window_count(tools: str, duration: str, scope: str) -> int:
    """Earlier allowed calls in a sliding window (see docs/policy.md). No state: error."""
    functions = _SESSION.get()
    if functions is None:
        # Fail closed: a rate limit that cannot be counted must not read as zero.
        raise ValueError("window_count needs session state, which is off")
    return functions.window_count(tools, duration, scope)


def window_sum(tools: str, argument: str, duration: str, scope: str) -> float:
    """Sum of an argument over a sliding window (see docs/policy.md). No state: error."""
    functions = _SESSION.get()
    if functions is None:
        raise ValueError("window_sum needs session state, which is off")
    return functions.window_sum(tools, argument, duration, scope)


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
        cel.FunctionDecl(
            "provenance",
            [
                cel.Overload(f"provenance_{name}", t.List(t.STRING), [kind], impl=provenance)
                for name, kind in (("string", t.STRING), ("int", t.INT), ("double", t.DOUBLE))
            ],
        ),
        cel.FunctionDecl(
            "window_count",
            [
                cel.Overload(
                    "window_count_string_string_string",
                    t.INT,
                    [t.STRING, t.STRING, t.STRING],
                    impl=window_count,
                )
            ],
        ),
        cel.FunctionDecl(
            "window_sum",
            [
                cel.Overload(
                    "window_sum_string_string_string_string",
                    t.DOUBLE,
                    [t.STRING, t.STRING, t.STRING, t.STRING],
                    impl=window_sum,
                )
            ],
        ),
    ]


#: Names of the Lictor-specific functions, for docs and lint.
FUNCTIONS = (
    "glob",
    "domain",
    "in_domain",
    "mentions",
    "in_cidr",
    "provenance",
    "window_count",
    "window_sum",
)


@lru_cache(maxsize=1)
def environment() -> Any:
    """Return the shared CEL environment (built once; compiling is thread-safe)."""
    return cel.NewEnv(
        variables={**dict.fromkeys(VARIABLES, cel.Type.DYN), "now": cel.Type.TIMESTAMP},
        functions=_decls(),
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            ext_math.ExtMath(),
            ext_bindings.ExtBindings(),
        ],
    )
