"""Load YAML documents as plain data, remembering where every value came from.

PyYAML's safe composer gives nodes with marks; we convert them ourselves so that each
JSON pointer maps to its 1-based line and column, and so that duplicate keys — which
PyYAML silently lets the last one win — are an error, because a duplicated ``effect``
in a rule would otherwise change its meaning without anyone noticing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from lictor.errors import PolicyError


@dataclass(slots=True)
class Document:
    """A parsed YAML document and the positions of its values by JSON pointer."""

    data: Any
    source: str
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    nodes: int = 0

    def locate(self, pointer: str) -> tuple[int, int] | None:
        """Return (line, column) of ``pointer`` or of its nearest located ancestor."""
        while True:
            if pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


def load_yaml(text: str, source: str) -> Document:
    """Parse one YAML document.

    Raises:
        PolicyError: syntax error or duplicate key, with line and column.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise PolicyError(
            f"YAML syntax error: {problem}",
            source=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", source=source) from None
    doc = Document(data=None, source=source)
    if node is not None:
        doc.data = _convert(node, "", doc, frozenset())
    return doc


MAX_NODES = 200_000
_STANDARD_TAGS = frozenset(
    {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}
)


def _convert(node: yaml.Node, pointer: str, doc: Document, path: frozenset[int]) -> Any:
    if id(node) in path:
        raise _error(node, doc, "recursive YAML alias")
    if len(path) > 64:
        raise _error(node, doc, "nested deeper than 64 levels")
    # Aliases can expand a small file into millions of nodes ("billion laughs").
    doc.nodes += 1
    if doc.nodes > MAX_NODES:
        raise _error(node, doc, f"more than {MAX_NODES} values (alias expansion?)")
    path = path | {id(node)}
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1  # a block scalar's text starts on the line after its indicator
    doc.positions[pointer] = (line, node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _STANDARD_TAGS:
        raise _error(node, doc, f"YAML tag {node.tag!r} is not allowed")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _error(key_node, doc, "YAML merge keys (<<) are not supported")
            key = _scalar(key_node, doc) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise _error(key_node, doc, "mapping keys must be strings")
            if key in out:
                raise _error(key_node, doc, f"duplicate key {key!r}")
            child = f"{pointer}/{_escape(key)}"
            out[key] = _convert(value_node, child, doc, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{pointer}/{i}", doc, path) for i, item in enumerate(node.value)]
    return _scalar(node, doc)


def _scalar(node: yaml.Node, doc: Document) -> Any:
    if node.tag == "tag:yaml.org,2002:timestamp":
        # Keep dates as text: policies and requests are JSON, which has no date type.
        return node.value
    try:
        return yaml.SafeLoader(  # a fresh constructor resolves the scalar's tag safely
            ""
        ).construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise _error(node, doc, f"bad value: {exc}") from None


def _escape(key: str) -> str:
    # RFC 6901: "~" -> "~0", "/" -> "~1"
    return key.replace("~", "~0").replace("/", "~1")


def _error(node: yaml.Node, doc: Document, message: str) -> PolicyError:
    return PolicyError(
        message,
        source=doc.source,
        line=node.start_mark.line + 1,
        column=node.start_mark.column + 1,
    )
