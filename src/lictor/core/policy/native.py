"""Evaluate the common subset of CEL directly on Python values: a cache in front of CEL.

A CEL evaluation through ``cel_expr_python`` costs 15-40 µs per decision, almost all of
it in building the activation and converting the request's values, not in the
conditions themselves. Most real conditions are field reads, comparisons, ``in`` and
``has()``. This module compiles those into Python closures that read the same plain
values the evaluator would hand to CEL, at about a microsecond per condition.

Invariants (the evaluator and the oracle test rely on them):

1. **A native program answers only when its answer is CEL's answer.** For any error,
   and for any case it does not model exactly, it raises :class:`Unresolved`; the
   evaluator then asks CEL, which also supplies the error text. Raising where CEL has a
   value is always safe — CEL's ``false && x`` is false and ``true || x`` is true
   whatever ``x`` is, and anything else goes back to CEL — so every doubtful case
   raises instead of guessing (for example ``2**53 + 1 == 9007199254740992.0``, which
   CEL decides in floating point).
2. **It runs only on plain JSON values** (:func:`is_plain`): ``dict`` with ``str`` keys,
   ``list``, ``str`` without lone surrogates, ``int`` within int64, ``float``, ``bool``,
   ``None``. CEL rejects or converts anything else when it reads a variable, so such a
   variable makes the evaluator use CEL.
3. Compilation is total: source outside the subset (macros, timestamps, arithmetic
   other than ``+ - *``, extension functions, …) compiles to ``None``, never an error.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lictor.core.policy.functions import (
    VARIABLES,
    domain,
    glob,
    glob_list,
    in_cidr,
    in_domain,
    mentions,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Integers up to this magnitude convert to double exactly, so mixed int/double
#: comparisons agree with CEL's (which compares in double).
_EXACT_IN_DOUBLE = 2**53

Env = Mapping[str, Any]
Fn = Callable[[Env], Any]
Path = tuple[str, ...]


class Unresolved(Exception):
    """The native program cannot answer exactly; CEL must evaluate the condition."""


class _Unsupported(Exception):
    """The source uses CEL outside the native subset."""


@dataclass(frozen=True, slots=True)
class _CelType:
    """A CEL type value, as ``type(x)`` returns and ``int``, ``string``, … denote."""

    name: str


_TYPE_NAMES = {
    name: _CelType(name)
    for name in ("int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type")
}
_TYPE_OF: dict[type, _CelType] = {
    bool: _TYPE_NAMES["bool"],
    int: _TYPE_NAMES["int"],
    float: _TYPE_NAMES["double"],
    str: _TYPE_NAMES["string"],
    type(None): _TYPE_NAMES["null_type"],
    list: _TYPE_NAMES["list"],
    dict: _TYPE_NAMES["map"],
}
#: ``now`` is a timestamp, which the native subset does not model.
_NATIVE_VARIABLES = frozenset(VARIABLES) - {"now"}


@dataclass(frozen=True, slots=True)
class NativeProgram:
    """A compiled condition: ``run(variables)`` returns its value or raises ``Unresolved``.

    ``variables`` are exactly the top-level variables the condition reads.
    """

    run: Fn
    variables: frozenset[str]


# --- plain values -------------------------------------------------------------------------


def _is_plain_str(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: CEL cannot hold it
        return False
    return True


_SIMPLE = frozenset({bool, float, type(None)})


def is_plain(value: object) -> bool:
    """Return whether ``value`` is plain JSON that CEL converts without change.

    Written as flat loops with the scalar cases inline and empty containers skipped: it
    runs on every variable of every natively evaluated request, so it must cost less
    than the conditions do.
    """
    kind = type(value)
    if kind is dict:
        return _plain_dict(value)  # type: ignore[arg-type]  # narrowed by kind
    if kind is list:
        return _all_plain(value)  # type: ignore[arg-type]  # narrowed by kind
    return _all_plain((value,))


def has_plain_values(value: dict[str, Any]) -> bool:
    """:func:`is_plain` for a dict whose keys are known plain (a record's own field names)."""
    return _all_plain(value.values())


def _plain_dict(value: dict[Any, Any]) -> bool:
    for key in value:
        if type(key) is not str:
            return False
    # One C-level pass over the keys for the common all-ASCII case.
    if not "".join(value).isascii() and not all(_is_plain_str(key) for key in value):
        return False
    return _all_plain(value.values())


def _all_plain(items: Iterable[Any]) -> bool:
    for item in items:
        kind = type(item)
        if kind is str:
            if not item.isascii() and not _is_plain_str(item):
                return False
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif kind in _SIMPLE:
            continue
        elif kind is dict:
            if item and not _plain_dict(item):
                return False
        elif kind is list:
            if item and not _all_plain(item):
                return False
        else:
            return False
    return True


# --- CEL operators on plain values ----------------------------------------------------------


def _check_mixed(a: Any, b: Any) -> None:
    """Allow int/double pairs only where int → double is exact (CEL compares in double)."""
    big = a if type(a) is int else b
    if not -_EXACT_IN_DOUBLE <= big <= _EXACT_IN_DOUBLE:
        raise Unresolved


def _is_number(kind: type) -> bool:
    return kind is int or kind is float


def _equal(a: Any, b: Any) -> bool:
    """CEL's runtime (heterogeneous) equality on plain values."""
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
        return bool(a == b)
    if _is_number(ta) and _is_number(tb):
        _check_mixed(a, b)
        return bool(a == b)
    if ta in _TYPE_OF and tb in _TYPE_OF:
        return False  # values of different kinds are never equal in CEL
    raise Unresolved


def _ordered(a: Any, b: Any) -> None:
    """Raise unless CEL orders ``a`` and ``b`` as Python does."""
    ta, tb = type(a), type(b)
    if ta is tb and (ta is int or ta is float or ta is str or ta is bool):
        return
    if _is_number(ta) and _is_number(tb):
        _check_mixed(a, b)
        return
    raise Unresolved


def _contains(item: Any, container: Any) -> bool:
    """CEL ``item in container``."""
    kind = type(container)
    if type(item) is str and (kind is list or kind is dict):
        # A string equals only an equal string, in CEL and in Python, among plain values.
        return item in container
    if kind is list:
        return any(_equal(item, element) for element in container)
    if kind is dict and type(item) is str:
        return item in container
    raise Unresolved


def _int_result(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise Unresolved  # CEL: integer overflow
    return value


def _add(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is not type(b):
        raise Unresolved  # CEL has no mixed-type arithmetic
    if ta is int:
        return _int_result(a + b)
    if ta is float or ta is str or ta is list:
        return a + b
    raise Unresolved


def _sub(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is not type(b):
        raise Unresolved
    if ta is int:
        return _int_result(a - b)
    if ta is float:
        return a - b
    raise Unresolved


def _mul(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is not type(b):
        raise Unresolved
    if ta is int:
        return _int_result(a * b)
    if ta is float:
        return a * b
    raise Unresolved


def _size(value: Any) -> int:
    kind = type(value)
    if kind is str or kind is list or kind is dict:
        return len(value)
    raise Unresolved


def _type_of(value: Any) -> _CelType:
    found = _TYPE_OF.get(type(value))
    if found is None:
        raise Unresolved
    return found


def _text(value: Any) -> str:
    if type(value) is not str:
        raise Unresolved
    return str(value)


def _call_glob(value: Any, pattern: Any) -> bool:
    text = _text(value)
    if type(pattern) is str:
        return glob(text, pattern)
    if type(pattern) is list:
        return glob_list(text, pattern)
    raise Unresolved


def _call_mentions(text: Any, value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is float or kind is str or kind is list:
        return mentions(_text(text), value)
    raise Unresolved  # CEL has no overload for bool, null or map


def _call_in_domain(value: Any, parent: Any) -> bool:
    return in_domain(_text(value), _text(parent))


def _call_in_cidr(address: Any, network: Any) -> bool:
    return in_cidr(_text(address), _text(network))


def _call_domain(value: Any) -> str:
    return domain(_text(value))


_FUNCTIONS: dict[tuple[str, int], Callable[..., Any]] = {
    ("size", 1): _size,
    ("type", 1): _type_of,
    ("glob", 2): _call_glob,
    ("mentions", 2): _call_mentions,
    ("domain", 1): _call_domain,
    ("in_domain", 2): _call_in_domain,
    ("in_cidr", 2): _call_in_cidr,
}


def _starts_with(value: Any, prefix: Any) -> bool:
    return _text(value).startswith(_text(prefix))


def _ends_with(value: Any, suffix: Any) -> bool:
    return _text(value).endswith(_text(suffix))


def _has_substring(value: Any, part: Any) -> bool:
    return _text(part) in _text(value)


_METHODS: dict[tuple[str, int], Callable[..., Any]] = {
    ("startsWith", 1): _starts_with,
    ("endsWith", 1): _ends_with,
    ("contains", 1): _has_substring,
    ("size", 0): _size,
}


# --- tokens -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)(?P<unsigned>[uU])?
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!\-+*/%?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        escaped = _ESCAPES.get(next(chars, ""))
        if escaped is None:
            raise _Unsupported  # \x, \u, octal: rare; CEL handles them
        out.append(escaped)
    return "".join(out)


def _tokens(source: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _Unsupported
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        text = m.group()
        if kind == "unsigned":
            raise _Unsupported  # uint literals
        if kind == "int":
            value = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
            if value > INT64_MAX:
                raise _Unsupported
            out.append(("lit", value))
        elif kind == "float":
            out.append(("lit", float(text)))
        elif kind == "string":
            out.append(("lit", _unquote(text)))
        elif kind == "ident" and text in ("true", "false", "null"):
            out.append(("lit", {"true": True, "false": False, "null": None}[text]))
        elif kind == "ident" and source.startswith(("'", '"'), pos):
            raise _Unsupported  # r'…', b'…' prefixes
        else:
            out.append((kind or "op", text))
    out.append(("end", None))
    return out


# --- parser: CEL grammar (cel-spec langdef.md), building closures as it goes --------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.pos = 0
        self.variables: set[str] = set()
        self.constants: dict[Fn, Any] = {}
        self.paths: dict[Fn, tuple[str, ...]] = {}
        self.last_select: tuple[Fn, str] | None = None
        # Type values (``int``, ``type(x)``) may only be compared with == and !=, so
        # they never reach a list, a function or ``in``.
        self.types: set[Fn] = set()
        self.compared: set[Fn] = set()
        # ``has(variable.field)`` closures, for the ``has(v.f) && …`` guard idiom.
        self.guards: dict[Fn, tuple[str, str]] = {}

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        return self.tokens[self.pos + offset]

    def take(self, text: str | None = None) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        if text is not None and token != ("op", text):
            raise _Unsupported
        self.pos += 1
        return token

    def at(self, text: str) -> bool:
        return self.tokens[self.pos] == ("op", text)

    def parse(self) -> Fn:
        fn = self.expr()
        if self.peek()[0] != "end" or not self.types <= self.compared:
            raise _Unsupported
        return fn

    def expr(self) -> Fn:
        cond = self.or_()
        if not self.at("?"):
            return cond
        self.take("?")
        then = self.or_()
        self.take(":")
        other = self.expr()

        def ternary(env: Env) -> Any:
            chosen = cond(env)
            if chosen is True:
                return then(env)
            if chosen is False:
                return other(env)
            raise Unresolved

        return ternary

    def or_(self) -> Fn:
        left = self.and_()
        while self.at("||"):
            self.take()
            left = _logical(left, self.and_(), absorbing=True)
        return left

    def and_(self) -> Fn:
        left = self.relation()
        while self.at("&&"):
            self.take()
            right = self.relation()
            guard = self.guards.get(left)
            if guard is not None:
                left = _guarded(guard, left, right)
            else:
                left = _logical(left, right, absorbing=False)
        return left

    def relation(self) -> Fn:
        left = self.addition()
        while True:
            kind, text = self.peek()
            if (kind, text) in _RELATIONS or (kind, text) == ("ident", "in"):
                self.take()
                left = self.relation_of(text, left, self.addition())
            else:
                return left

    def addition(self) -> Fn:
        left = self.multiplication()
        while self.at("+") or self.at("-"):
            op = _add if self.take()[1] == "+" else _sub
            left = _binary(op, left, self.multiplication())
        return left

    def multiplication(self) -> Fn:
        left = self.unary()
        while self.at("*") or self.at("/") or self.at("%"):
            if self.take()[1] != "*":
                raise _Unsupported  # CEL's / and % truncate and fail differently
            left = _binary(_mul, left, self.unary())
        return left

    def unary(self) -> Fn:
        if self.at("!"):
            self.take()
            inner = self.unary()

            def negate(env: Env) -> bool:
                value = inner(env)
                if value is True:
                    return False
                if value is False:
                    return True
                raise Unresolved

            return negate
        if self.at("-"):
            self.take()
            inner = self.unary()

            def minus(env: Env) -> Any:
                value = inner(env)
                if type(value) is int:
                    return _int_result(-value)
                if type(value) is float:
                    return -value
                raise Unresolved

            return minus
        return self.member()

    def member(self) -> Fn:
        fn = self.primary()
        last: tuple[Fn, str] | None = None
        while True:
            if self.at("."):
                self.take()
                optional = self.at("?")
                if optional:
                    self.take()
                kind, name = self.take()
                if kind != "ident":
                    raise _Unsupported
                if optional:
                    fn, last = self.or_value(fn, self.constant(name)), None
                elif self.at("("):
                    fn, last = self.method(fn, name), None
                else:
                    fn, last = self.select(fn, name), (fn, name)
            elif self.at("["):
                self.take()
                optional = self.at("?")
                if optional:
                    self.take()
                key = self.expr()
                self.take("]")
                fn, last = (self.or_value(fn, key) if optional else _index(fn, key)), None
            else:
                self.last_select = last
                return fn

    def select(self, target: Fn, name: str) -> Fn:
        path = self.paths.get(target)
        if path is None:
            return _select(target, name)
        fn = _path((*path, name))
        self.paths[fn] = (*path, name)
        return fn

    def or_value(self, target: Fn, key: Fn) -> Fn:
        """``x.?f.orValue(d)`` and ``x[?k].orValue(d)``; other optional uses go to CEL."""
        self.take(".")
        kind, name = self.take()
        if (kind, name) != ("ident", "orValue"):
            raise _Unsupported
        args = self.arguments()
        if len(args) != 1:
            raise _Unsupported
        fallback = args[0]

        def or_value(env: Env) -> Any:
            container = target(env)
            wanted = key(env)
            if type(container) is not dict or type(wanted) is not str:
                raise Unresolved
            if wanted in container:
                return container[wanted]
            return fallback(env)

        return or_value

    def method(self, target: Fn, name: str) -> Fn:
        args = self.arguments()
        impl = _METHODS.get((name, len(args)))
        if impl is None:
            raise _Unsupported
        if not args:
            return lambda env: impl(target(env))
        (arg,) = args
        return lambda env: impl(target(env), arg(env))

    def arguments(self) -> list[Fn]:
        self.take("(")
        args: list[Fn] = []
        while not self.at(")"):
            args.append(self.expr())
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return args

    def primary(self) -> Fn:
        kind, value = self.take()
        if kind == "lit":
            return self.constant(value)
        if kind == "ident":
            if self.at("("):
                return self.call(value)
            if value in _NATIVE_VARIABLES:
                self.variables.add(value)
                fn = _path((value,))
                self.paths[fn] = (value,)
                return fn
            if value in _TYPE_NAMES:
                fn = self.constant(_TYPE_NAMES[value])
                self.types.add(fn)
                return fn
            raise _Unsupported
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.take(")")
            return inner
        if (kind, value) == ("op", "["):
            return self.list_literal()
        raise _Unsupported

    def call(self, name: str) -> Fn:
        if name == "has":
            return self.has()
        args = self.arguments()
        impl = _FUNCTIONS.get((name, len(args)))
        if impl is None:
            raise _Unsupported
        if len(args) == 1:
            (arg,) = args
            fn: Fn = lambda env: impl(arg(env))  # noqa: E731 - a closure is the point
            if name == "type":
                self.types.add(fn)
            return fn
        first, second = args
        return lambda env: impl(first(env), second(env))

    def has(self) -> Fn:
        """``has(x.f)``: the argument must end in a field selection (CEL checks this)."""
        self.take("(")
        self.member()
        selection = self.last_select
        self.take(")")
        if selection is None:
            raise _Unsupported
        target, name = selection
        path = self.paths.get(target)
        if path is not None and len(path) == 1:
            variable = path[0]

            def has_field(env: Env) -> bool:
                container = env.get(variable)
                if type(container) is not dict:
                    raise Unresolved
                return name in container

            self.guards[has_field] = (variable, name)
            return has_field

        def has(env: Env) -> bool:
            container = target(env)
            if type(container) is not dict:
                raise Unresolved
            return name in container

        return has

    def list_literal(self) -> Fn:
        items: list[Fn] = []
        while not self.at("]"):
            items.append(self.expr())
            if not self.at("]"):
                self.take(",")
        self.take("]")
        if all(item in self.constants for item in items):
            return self.constant([self.constants[item] for item in items])
        return lambda env: [item(env) for item in items]

    def constant(self, value: Any) -> Fn:
        """A literal; remembered so ``x in [literals]`` can use a set."""

        def literal(env: Env) -> Any:
            return value

        self.constants[literal] = value
        return literal

    def relation_of(self, op: str, left: Fn, right: Fn) -> Fn:
        if op in ("==", "!="):
            self.compared.update((left, right))
        path = self.paths.get(left)
        if right in self.constants and left not in self.types:
            value = self.constants[right]
            kind = type(value)
            if op == "in" and kind is list and all(type(v) is str for v in value):
                return _in_strings(left, value, path)
            if op in _ORDER and kind in (int, float, str):
                return _compare_to(op, left, value, path)
            if op in ("==", "!=") and kind is str:
                return _equal_to(left, value, negate=op == "!=")
        if op == "in" and type(self.constants.get(left)) is str:
            return _string_in(self.constants[left], right, self.paths.get(right))
        return _relation(op, left, right)


_RELATIONS = {("op", t) for t in ("==", "!=", "<", "<=", ">", ">=")}


_MISSING = object()


def _path(names: tuple[str, ...]) -> Fn:
    """Read ``variable.field.field…``: one closure for the chain, the common case."""
    variable, *fields = names
    if not fields:

        def read(env: Env) -> Any:
            try:
                return env[variable]
            except KeyError:
                raise Unresolved from None

        return read
    if len(fields) == 1:
        (field,) = fields

        def read_field(env: Env) -> Any:
            container = env.get(variable)
            if type(container) is dict:
                value = container.get(field, _MISSING)
                if value is not _MISSING:
                    return value
            raise Unresolved  # not a map, or no such key

        return read_field

    def read_path(env: Env) -> Any:
        value = env.get(variable)
        for name in fields:
            if type(value) is not dict:
                raise Unresolved
            value = value.get(name, _MISSING)
            if value is _MISSING:
                raise Unresolved
        return value

    return read_path


def _select(target: Fn, name: str) -> Fn:
    def select(env: Env) -> Any:
        container = target(env)
        if type(container) is dict:
            value = container.get(name, _MISSING)
            if value is not _MISSING:
                return value
        raise Unresolved  # not a map, or no such key

    return select


def _index(target: Fn, key: Fn) -> Fn:
    def index(env: Env) -> Any:
        container = target(env)
        wanted = key(env)
        kind = type(container)
        if kind is dict and type(wanted) is str:
            try:
                return container[wanted]
            except KeyError:
                raise Unresolved from None
        if kind is list and type(wanted) is int and 0 <= wanted < len(container):
            return container[wanted]
        raise Unresolved

    return index


def _logical(left: Fn, right: Fn, *, absorbing: bool) -> Fn:
    """CEL ``&&`` (``absorbing=False``) and ``||`` (``True``): commutative over errors.

    The absorbing value wins from either side even if the other side fails; otherwise
    both sides must be booleans.
    """
    win: bool = absorbing
    other: bool = not absorbing

    def logical(env: Env) -> bool:
        try:
            a = left(env)
        except Unresolved:
            a = None
        if a is absorbing:
            return win
        try:
            b = right(env)
        except Unresolved:
            b = None
        if b is absorbing:
            return win
        if a is other and b is other:
            return not win
        raise Unresolved

    return logical


def _guarded(guard: tuple[str, str], has: Fn, rest: Fn) -> Fn:
    """``has(v.f) && rest`` in one step: the common guard before reading an optional field.

    Exactly ``_logical(has, rest, absorbing=False)``: an absent field is ``false``
    whatever ``rest`` is; a present one gives ``rest``'s value if it is a boolean.
    """
    variable, name = guard
    general = _logical(has, rest, absorbing=False)

    def guarded(env: Env) -> bool:
        container = env.get(variable)
        if type(container) is not dict:
            return bool(general(env))  # a bool already: ``_logical`` returns only those
        if name not in container:
            return False
        value = rest(env)
        if value is True:
            return True
        if value is False:
            return False
        raise Unresolved

    return guarded


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _relation(op: str, left: Fn, right: Fn) -> Fn:
    if op == "==":
        return lambda env: _equal(left(env), right(env))
    if op == "!=":
        return lambda env: not _equal(left(env), right(env))
    if op == "in":
        return _membership(left, right)
    order = _ORDER[op]

    def compare(env: Env) -> bool:
        a = left(env)
        b = right(env)
        _ordered(a, b)
        return bool(order(a, b))

    return compare


def _compare_to(op: str, left: Fn, constant: int | float | str, path: Path | None) -> Fn:
    """``x < 5``, ``x >= 'm'``: skip the generic checks when the kinds match."""
    order = _ORDER[op]
    kind = type(constant)
    if path is not None and len(path) == 2:
        variable, field = path

        def compare_field(env: Env) -> bool:
            container = env.get(variable)
            if type(container) is dict:
                a = container.get(field, _MISSING)
                if type(a) is kind:
                    return bool(order(a, constant))
                if a is not _MISSING:
                    _ordered(a, constant)
                    return bool(order(a, constant))
            raise Unresolved

        return compare_field

    def compare(env: Env) -> bool:
        a = left(env)
        if type(a) is not kind:
            _ordered(a, constant)
        return bool(order(a, constant))

    return compare


def _equal_to(left: Fn, constant: str, *, negate: bool) -> Fn:
    """``x == 'a'`` and ``x != 'a'``: plain Python equality for strings."""

    def equal(env: Env) -> bool:
        a = left(env)
        same = a == constant if type(a) is str else _equal(a, constant)
        return same is not negate

    return equal


def _membership(left: Fn, right: Fn) -> Fn:
    return lambda env: _contains(left(env), right(env))


def _in_strings(left: Fn, values: list[str], path: Path | None) -> Fn:
    """``x in ['a', 'b']``: a set lookup for strings, CEL's equality for anything else."""
    members = frozenset(values)
    if path is not None and len(path) == 2:
        variable, field = path

        def contains_field(env: Env) -> bool:
            container = env.get(variable)
            if type(container) is dict:
                item = container.get(field, _MISSING)
                if type(item) is str:
                    return item in members
                if item is not _MISSING:
                    return _contains(item, values)
            raise Unresolved

        return contains_field

    def contains(env: Env) -> bool:
        item = left(env)
        if type(item) is str:
            return item in members
        return _contains(item, values)

    return contains


def _string_in(item: str, right: Fn, path: Path | None) -> Fn:
    """``'label' in x``: Python's ``in`` is CEL's for a string among plain values."""
    if path is not None and len(path) == 2:
        variable, field = path

        def in_field(env: Env) -> bool:
            container = env.get(variable)
            if type(container) is dict:
                found = container.get(field, _MISSING)
                kind = type(found)
                if kind is list or kind is dict:
                    return item in found
            raise Unresolved

        return in_field

    def contains(env: Env) -> bool:
        found = right(env)
        kind = type(found)
        if kind is list or kind is dict:
            return item in found
        raise Unresolved

    return contains


def _binary(op: Callable[[Any, Any], Any], left: Fn, right: Fn) -> Fn:
    return lambda env: op(left(env), right(env))


@lru_cache(maxsize=4096)
def compile_native(source: str) -> NativeProgram | None:
    """Compile ``source``, which the CEL compiler has accepted; ``None`` if outside the subset."""
    try:
        parser = _Parser(source)
        run = parser.parse()
    except (_Unsupported, IndexError, ValueError, RecursionError):
        return None
    return NativeProgram(run=run, variables=frozenset(parser.variables))
