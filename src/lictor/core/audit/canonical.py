"""Canonical JSON: one byte string per JSON value, so a hash of it means something.

We follow RFC 8785 (JSON Canonicalization Scheme, JCS): object members sorted by the
UTF-16 code units of their names, no insignificant whitespace, strings escaped as
ECMAScript ``JSON.stringify`` does, UTF-8 output, and numbers printed as ECMAScript
``Number.prototype.toString`` prints them. Where we differ from JCS, it is on purpose
and listed in :func:`canonical_json`. Only the standard library is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from json.encoder import encode_basestring  # the C-accelerated escaper json.dumps uses
from typing import Final, cast

__all__ = ["canonical_json"]

# ECMAScript switches to exponent notation outside 1e-7 < |x| < 1e21 (ECMA-262,
# Number::toString, steps 6-9); these are the bounds on n, the decimal exponent.
_MAX_FIXED_EXPONENT: Final = 21
_MIN_FIXED_EXPONENT: Final = -6


def canonical_json(value: object) -> bytes:
    """Serialize a JSON value to its canonical UTF-8 bytes.

    Objects are any :class:`~collections.abc.Mapping` with ``str`` keys; arrays are lists
    or tuples; scalars are ``str``, ``int``, ``float``, ``bool`` and ``None``. The output
    is the same whatever the key order or container types of the input, which is what
    lets the audit chain hash a record today and re-check it after a round trip through
    a database or a JSONL export.

    Numbers, and where this differs from RFC 8785:

    * ``float`` values are printed like ECMAScript does, which JCS requires: Python's
      shortest round-trip digits (``repr``), laid out by ECMA-262 rules, so ``1.0`` is
      ``1``, ``1e16`` is ``10000000000000000``, ``1e-7`` is ``1e-7`` and ``-0.0`` is
      ``0``. Both algorithms pick the shortest digit string that reads back to the same
      double, so the digits agree.
    * ``int`` values are printed exactly, at any size. JCS treats every number as an
      IEEE 754 double, so integers beyond ±2**53 would be rounded there; we keep them
      exact instead of silently changing the data. Keep such numbers in strings if
      another JCS implementation must reproduce the bytes.
    * NaN and ±Infinity have no JSON form and are rejected, as in JCS.

    Args:
        value: The value to serialize.

    Returns:
        UTF-8 bytes of the canonical form.

    Raises:
        ValueError: A float is NaN or infinite, an object key is not a ``str``, a string
            holds a lone surrogate (not valid Unicode), or the value nests too deeply
            or contains itself.
        TypeError: A value is of a type JSON cannot represent.
    """
    out: list[str] = []
    try:
        _encode(value, out)
    except RecursionError as exc:
        raise ValueError("value nests too deeply (or contains itself) for JSON") from exc
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"string is not valid Unicode (lone surrogate): {exc}") from exc


def _utf16_order(key: str) -> bytes:
    """Sort key giving RFC 8785 §3.2.3 member order: by UTF-16 code units.

    Big-endian UTF-16 bytes compare exactly like the code-unit sequence.
    """
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: object, out: list[str]) -> None:
    # Exact type checks first: they are the common case and cost a pointer comparison,
    # where isinstance against the Mapping ABC is slow. Verifying a million records
    # spends most of its time here. Subclasses (IntEnum, StrEnum, OrderedDict, ...) fall
    # through to the isinstance checks below, in an order that puts bool before int.
    if type(value) is str:
        out.append(encode_basestring(value))
    elif type(value) is dict:
        _encode_object(value, out)
    elif type(value) is int:
        out.append(int.__repr__(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif type(value) is float:
        out.append(_format_float(value))
    elif isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))  # plain digits, not an IntEnum's repr
    elif isinstance(value, float):
        out.append(_format_float(value))
    elif isinstance(value, Mapping):
        _encode_object(value, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        first = True
        for item in value:
            if not first:
                out.append(",")
            first = False
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON type")


def _encode_object(value: Mapping[object, object], out: list[str]) -> None:
    keys = cast("list[str]", list(value))  # proven just below: join rejects non-str
    try:
        names = "".join(keys)
    except TypeError:
        bad: object = next(key for key in value if not isinstance(key, str))
        # json.dumps would quietly turn 1 and "1" into the same key; refuse instead.
        raise ValueError(f"object keys must be str, not {type(bad).__name__}: {bad!r}") from None
    # Python's code-point order equals UTF-16 order unless a name has a character at or
    # above U+D800, where surrogate pairs sort before U+E000..U+FFFF (RFC 8785 §3.2.3).
    if names.isascii() or max(names) < "\ud800":
        keys.sort()
    else:
        keys.sort(key=_utf16_order)
    out.append("{")
    separator = ""
    for key in keys:
        out.append(separator + encode_basestring(key) + ":")
        separator = ","
        item = value[key]
        # Inline the two commonest member types: one call per record saved is seconds
        # saved over a million records.
        if type(item) is str:
            out.append(encode_basestring(item))
        elif type(item) is int:
            out.append(int.__repr__(item))
        else:
            _encode(item, out)
    out.append("}")


def _format_float(value: float) -> str:
    """Print a float as ECMAScript ``Number::toString`` does (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"  # ECMAScript prints -0 as 0 too
    text = float.__repr__(value)  # not a subclass's own __repr__
    if "e" not in text:
        # Python prints 1e-4 <= |x| < 1e16 in fixed notation, inside ECMAScript's fixed
        # range, with the same digits; only integral values differ ("1.0" against "1").
        return text[:-2] if text.endswith(".0") else text
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip; re-lay them out by ECMA-262.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    leading_zeros = len(all_digits) - len(digits)
    digits = digits.rstrip("0")
    # n is where the decimal point sits relative to the first significant digit:
    # value = 0.d1d2...dk * 10**n (ECMA-262 calls the digits s and their count k).
    n = len(whole) + int(exponent or "0") - leading_zeros
    k = len(digits)
    # Past the fast path, |value| >= 1e16 (n >= 17, and k <= 17 digits, so the value is
    # an integer) or |value| < 1e-4 (n <= -4). ECMAScript prints the first as plain
    # digits up to 1e21 and the second with a "0.000" prefix down to 1e-6.
    if 0 < n <= _MAX_FIXED_EXPONENT:
        return sign + digits + "0" * (n - k)
    if _MIN_FIXED_EXPONENT < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    exp_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + exp_text
    return sign + digits[0] + "." + digits[1:] + "e" + exp_text
