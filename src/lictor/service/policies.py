"""Load a policy bundle (a directory of YAML files) all-or-nothing.

A bundle is every ``*.yaml`` / ``*.yml`` file under a directory, in path order. Any
error in any file rejects the whole bundle, so a caller that already runs a policy keeps
it. The version is the SHA-256 over every file's relative path and bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
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
    #: relative path -> text of every file, so a stored version can be re-materialised.
    files: Mapping[str, str] = field(default_factory=dict)

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
    base = root if root.is_dir() else root.parent
    contents = []
    for path in bundle_files(root):
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            raise PolicyError(f"file larger than {MAX_FILE_BYTES} bytes", source=str(path))
        contents.append((path.relative_to(base).as_posix(), str(path), raw))
    return _build_bundle(contents, root)


def bundle_from_files(files: Mapping[str, str], *, root: Path | None = None) -> Bundle:
    """Load a bundle from ``{relative path: YAML text}``: an upload or a stored version.

    The same files give the same version digest as when loaded from a directory, so a
    version stored by one replica is recognised as itself by every other one.

    Raises:
        PolicyError: a name is not a relative ``.yaml``/``.yml`` path, or a file is invalid.
    """
    contents = []
    for name in sorted(files, key=PurePosixPath):
        path = PurePosixPath(name)
        if (
            not name
            or path.is_absolute()
            or ".." in path.parts
            or path.as_posix() != name
            or path.suffix not in (".yaml", ".yml")
        ):
            raise PolicyError(
                "a bundle file name must be a relative path ending in .yaml or .yml "
                "(no '..', no leading '/')",
                source=name,
            )
        text = files[name]
        if not isinstance(text, str):
            raise PolicyError("a bundle file's content must be text", source=name)
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_FILE_BYTES:
            raise PolicyError(f"file larger than {MAX_FILE_BYTES} bytes", source=name)
        contents.append((name, name, raw))
    return _build_bundle(contents, root if root is not None else Path("."))


def _build_bundle(contents: list[tuple[str, str, bytes]], root: Path) -> Bundle:
    """Parse and compile ``(relative path, display name, bytes)`` triples, in order."""
    digest = hashlib.sha256()
    documents: list[Document] = []
    rules: list[Rule] = []
    texts: dict[str, str] = {}
    timezone: str | None = None
    timezone_source: str | None = None
    for rel_name, name, raw in contents:
        rel = rel_name.encode()
        digest.update(len(rel).to_bytes(4, "big") + rel + len(raw).to_bytes(8, "big") + raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"not UTF-8 (byte {exc.start})", source=name) from None
        texts[rel_name] = text
        try:
            doc = load_yaml(text, name)
        except RecursionError:
            # An upload is untrusted: "[[[[…" must be a refusal, not a crash.
            raise PolicyError("nested too deeply to be a policy file", source=name) from None
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
    return Bundle(policy=policy, root=root, documents=tuple(documents), files=texts)


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
