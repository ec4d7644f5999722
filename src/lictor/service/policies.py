"""Load a policy bundle (a directory of YAML files) all-or-nothing.

A bundle is every ``*.yaml`` / ``*.yml`` file under a directory, in path order. Any
error in any file rejects the whole bundle, so a caller that already runs a policy keeps
it. The version is the SHA-256 over every file's relative path and bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lictor.core.agents import Agent, parse_agent
from lictor.core.policy import CompiledPolicy, Rule, compile_policy, parse_document
from lictor.errors import ConfigError, PolicyError
from lictor.service.documents import Document, load_yaml

MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bundle:
    """A loaded bundle: the compiled policy, its files and their parsed documents."""

    policy: CompiledPolicy
    root: Path
    documents: tuple[Document, ...]

    @property
    def version(self) -> str:
        """Content digest, ``sha256:<hex>``."""
        return self.policy.version


def bundle_files(root: Path) -> list[Path]:
    """Return the YAML files of a bundle, sorted.

    Raises:
        ConfigError: the path does not exist or is not a directory or file.
    """
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ConfigError(
            f"policy path {str(root)!r} does not exist; pass a directory of YAML files"
        )
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def load_bundle(root: str | Path) -> Bundle:
    """Load, validate and compile every policy file under ``root``.

    Raises:
        ConfigError: the directory does not exist.
        PolicyError: any file is invalid (file, line, column, rule id in the error).
    """
    root = Path(root)
    files = bundle_files(root)
    digest = hashlib.sha256()
    documents: list[Document] = []
    rules: list[Rule] = []
    timezone: str | None = None
    timezone_source: str | None = None
    base = root if root.is_dir() else root.parent
    for path in files:
        name = str(path)
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            raise PolicyError(f"file larger than {MAX_FILE_BYTES} bytes", source=name)
        rel = path.relative_to(base).as_posix().encode()
        digest.update(len(rel).to_bytes(4, "big") + rel + len(raw).to_bytes(8, "big") + raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"not UTF-8 (byte {exc.start})", source=name) from None
        doc = load_yaml(text, name)
        documents.append(doc)
        file_rules, settings = parse_document(doc.data, source=name, locate=doc.locate)
        rules.extend(file_rules)
        tz = settings.get("timezone")
        if tz is not None:
            if timezone is not None and tz != timezone:
                pos = doc.locate("/settings/timezone")
                raise PolicyError(
                    f"timezone {tz!r} conflicts with {timezone!r} set in {timezone_source}",
                    source=name,
                    line=pos[0] if pos else None,
                )
            timezone, timezone_source = tz, name
    try:
        policy = compile_policy(
            rules, version="sha256:" + digest.hexdigest(), timezone=timezone or "UTC"
        )
    except PolicyError as exc:
        if exc.source is not None or timezone_source is None:
            raise
        # Only the time zone error comes without a file: name the file that set it.
        doc = next(d for d in documents if d.source == timezone_source)
        pos = doc.locate(exc.pointer)
        raise PolicyError(
            exc.message,
            source=timezone_source,
            line=pos[0] if pos else None,
            column=pos[1] if pos else None,
            pointer=exc.pointer,
        ) from None
    return Bundle(policy=policy, root=root, documents=tuple(documents))


def load_inventory(path: str | Path) -> list[Agent]:
    """Load an inventory file: a YAML mapping with an ``agents:`` list.

    Raises:
        ConfigError: the file does not exist.
        PolicyError: a record is invalid or an id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"inventory file {str(path)!r} does not exist")
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return parse_inventory(doc)


def parse_inventory(doc: Document) -> list[Agent]:
    """Parse the ``agents:`` list of an inventory document.

    Raises:
        PolicyError: a record is invalid or an id repeats.
    """
    data: Any = doc.data
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("agents", []), list):
        raise PolicyError(
            "an inventory file must be a mapping with an 'agents:' list", source=doc.source
        )
    unknown = sorted(set(data) - {"agents"})
    if unknown:
        pos = doc.locate(f"/{unknown[0]}")
        raise PolicyError(
            f"unknown field {unknown[0]!r}; an inventory file holds 'agents:'",
            source=doc.source,
            line=pos[0] if pos else None,
        )
    agents: list[Agent] = []
    seen: set[str] = set()
    for i, item in enumerate(data.get("agents", [])):
        pointer = f"/agents/{i}"
        try:
            agent = parse_agent(item, source=doc.source, pointer=pointer)
        except PolicyError as exc:
            pos = doc.locate(exc.pointer)
            raise PolicyError(
                exc.message,
                source=doc.source,
                line=pos[0] if pos else None,
                column=pos[1] if pos else None,
                pointer=exc.pointer,
            ) from None
        if agent.id in seen:
            pos = doc.locate(pointer)
            raise PolicyError(
                f"duplicate agent id {agent.id!r}", source=doc.source, line=pos[0] if pos else None
            )
        seen.add(agent.id)
        agents.append(agent)
    return agents
