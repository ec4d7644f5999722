"""How error messages name the type of a JSON (or YAML) value: one vocabulary everywhere."""

from __future__ import annotations

from collections.abc import Mapping


def describe_type(value: object) -> str:
    """Name the type of ``value`` the way error messages do.

    Returns ``"null"``, ``"a boolean"``, ``"a number"``, ``"a string"``, ``"a list"``,
    ``"an object"``, or the Python type name for anything that is not JSON.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
