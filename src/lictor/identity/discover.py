"""Find the AI agents and MCP servers configured on a machine, without running any of them.

:func:`discover` reads the configuration files of MCP clients (Claude Desktop, Claude
Code, Cursor, VS Code, Windsurf, Gemini CLI, Codex CLI, Continue) in user, project and
system scopes, and reports which servers each would start or connect to. Rules:

1. Read only, offline. Nothing is executed, no socket is opened, no file is written.
   FIFOs and devices are never read (opened non-blocking, then ``fstat``-checked).
2. No secrets in the report: environment variables and HTTP headers by NAME only;
   arguments that look like secrets are masked and URLs lose credentials and query.
3. One bad file never stops the scan: an unreadable or malformed file, or a wrong
   shape inside it, becomes a :class:`Problem` with the reason, and the scan goes on.

Which paths are read is the table in :func:`_locations`; docs/identity.md lists it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import yaml

from lictor.core.agents import Agent
from lictor.core.jsontypes import describe_type

__all__ = [
    "MAX_FILE_BYTES",
    "Client",
    "DiscoveryReport",
    "FoundAgent",
    "FoundServer",
    "Problem",
    "Scope",
    "default_system_dirs",
    "discover",
    "parse_jsonc",
]

#: Larger files are reported, not read (``~/.claude.json`` holds history and grows).
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
_MASK: Final = "***"


class Client(StrEnum):
    """The MCP clients (agents) whose configuration we understand."""

    CLAUDE_DESKTOP = "claude-desktop"
    CLAUDE_CODE = "claude-code"
    CURSOR = "cursor"
    VSCODE = "vscode"
    WINDSURF = "windsurf"
    GEMINI_CLI = "gemini-cli"
    CODEX_CLI = "codex-cli"
    CONTINUE = "continue"


class Scope(StrEnum):
    """Who a configuration applies to: one user, one project, or every user of the machine."""

    USER = "user"
    PROJECT = "project"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class FoundServer:
    """One MCP server a client is configured to start (stdio) or connect to (http/sse).

    ``env`` and ``headers`` are names only. ``pointer`` locates the entry in ``file``
    (RFC 6901). ``in_inventory`` is None when no inventory was given.
    """

    client: Client
    scope: Scope
    file: str
    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    url: str | None = None
    env: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    enabled: bool = True
    pointer: str = ""
    in_inventory: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "client": self.client.value,
            "scope": self.scope.value,
            "file": self.file,
            "pointer": self.pointer,
            "name": self.name,
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args),
            "url": self.url,
            "env": list(self.env),
            "headers": list(self.headers),
            "enabled": self.enabled,
            "in_inventory": self.in_inventory,
        }


@dataclass(frozen=True, slots=True)
class FoundAgent:
    """An agent found: an installed MCP client, or a sub-agent defined for one.

    ``kind`` is ``client`` (its name is the client id, e.g. ``claude-code``) or
    ``subagent`` (a Claude Code agent file; its name is the file's ``name``).
    """

    client: Client
    scope: Scope
    file: str
    name: str
    kind: str
    tools: tuple[str, ...] = ()
    in_inventory: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "client": self.client.value,
            "scope": self.scope.value,
            "file": self.file,
            "name": self.name,
            "kind": self.kind,
            "tools": list(self.tools),
            "in_inventory": self.in_inventory,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """A file that could not be read or understood, and why."""

    client: Client
    scope: Scope
    file: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "client": self.client.value,
            "scope": self.scope.value,
            "file": self.file,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class DiscoveryReport:
    """Everything one scan found, in a stable order (scope, client, file, name)."""

    agents: tuple[FoundAgent, ...] = ()
    servers: tuple[FoundServer, ...] = ()
    problems: tuple[Problem, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def shadow_agents(self) -> tuple[FoundAgent, ...]:
        """Agents an inventory was checked against and does not list."""
        return tuple(a for a in self.agents if a.in_inventory is False)

    @property
    def shadow_servers(self) -> tuple[FoundServer, ...]:
        """Servers an inventory was checked against and does not list."""
        return tuple(s for s in self.servers if s.in_inventory is False)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form (the ``lictor discover --json`` output)."""
        return {
            "files": list(self.files),
            "agents": [a.to_json() for a in self.agents],
            "servers": [s.to_json() for s in self.servers],
            "problems": [p.to_json() for p in self.problems],
            "summary": {
                "files": len(self.files),
                "agents": len(self.agents),
                "servers": len(self.servers),
                "problems": len(self.problems),
                "shadow_agents": len(self.shadow_agents),
                "shadow_servers": len(self.shadow_servers),
            },
        }


# --- the scan ------------------------------------------------------------------------------


class _Shape(Exception):
    """The file parsed, but a part of it is not what the client expects."""


_Entry = tuple[str, str, object, "Scope | None"]  # pointer, name, entry, scope override
_Extract = Callable[[object, list[str]], Iterator[_Entry]]


@dataclass(frozen=True, slots=True)
class _Location:
    client: Client
    scope: Scope
    path: Path
    format: str  # "json" (JSONC accepted), "toml", "yaml", "agent-md"
    extract: _Extract | None = None


def default_system_dirs() -> list[Path]:
    """Where this platform keeps machine-wide (managed) client settings."""
    if os.name == "nt":
        return [Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"))]
    dirs = [Path("/etc")]
    if Path("/Library/Application Support").is_dir():
        dirs.append(Path("/Library/Application Support"))
    return dirs


def discover(
    home: Path,
    project: Path | None,
    system_dirs: list[Path],
    *,
    inventory: Iterable[Agent] | None = None,
) -> DiscoveryReport:
    """Scan a home directory, an optional project and system directories.

    With ``inventory``, every agent and server is marked ``in_inventory`` True or
    False: an agent matches an inventory record by id; a server matches a record whose
    id is the server's name, or whose ``attributes.mcp_servers`` lists that name.

    Never raises for a bad or unreadable file; see :class:`Problem`.
    """
    agents: list[FoundAgent] = []
    servers: list[FoundServer] = []
    problems: list[Problem] = []
    files: list[str] = []
    seen: set[tuple[Client, Scope]] = set()
    for location in _locations(home, project, system_dirs):
        text = _read(location, problems)
        if text is None:
            continue
        name = str(location.path)
        files.append(name)
        if (location.client, location.scope) not in seen:
            seen.add((location.client, location.scope))
            agents.append(
                FoundAgent(location.client, location.scope, name, location.client.value, "client")
            )
        if location.format == "agent-md":
            agents.append(_subagent(location, text, problems))
            continue
        try:
            document = _parse(location.format, text)
        except ValueError as exc:
            problems.append(Problem(location.client, location.scope, name, f"malformed: {exc}"))
            continue
        if location.extract is None:
            continue
        shapes: list[str] = []
        for pointer, server_name, entry, scope in location.extract(document, shapes):
            try:
                servers.append(
                    _server(location, scope or location.scope, pointer, server_name, entry)
                )
            except _Shape as exc:
                shapes.append(f"{pointer}: {exc}")
        problems.extend(Problem(location.client, location.scope, name, s) for s in shapes)
    if inventory is not None:
        agents, servers = _mark(agents, servers, list(inventory))
    return DiscoveryReport(
        agents=tuple(sorted(agents, key=lambda a: (a.scope, a.client, a.file, a.name))),
        servers=tuple(sorted(servers, key=lambda s: (s.scope, s.client, s.file, s.name))),
        problems=tuple(problems),
        files=tuple(files),
    )


def _mark(
    agents: list[FoundAgent], servers: list[FoundServer], inventory: list[Agent]
) -> tuple[list[FoundAgent], list[FoundServer]]:
    ids: set[str] = {str(a.id) for a in inventory}
    server_names = set(ids)
    for record in inventory:
        listed = record.attributes.get("mcp_servers")
        if isinstance(listed, list):
            server_names.update(str(x) for x in listed)
    return (
        [replace(a, in_inventory=a.name in ids) for a in agents],
        [replace(s, in_inventory=s.name in server_names) for s in servers],
    )


# --- where each client keeps its configuration ---------------------------------------------


def _locations(home: Path, project: Path | None, system_dirs: list[Path]) -> Iterator[_Location]:
    """Every file we look at, in scan order. Paths that do not exist are skipped silently."""
    user, proj, system = Scope.USER, Scope.PROJECT, Scope.SYSTEM
    mcp_servers = _at("mcpServers")
    # Claude Desktop: Linux (unofficial builds), macOS, Windows.
    for base in (".config/Claude", "Library/Application Support/Claude", "AppData/Roaming/Claude"):
        yield _Location(
            Client.CLAUDE_DESKTOP,
            user,
            home / base / "claude_desktop_config.json",
            "json",
            mcp_servers,
        )
    # Claude Code: user and per-project ("local") servers live in ~/.claude.json.
    yield _Location(Client.CLAUDE_CODE, user, home / ".claude.json", "json", _claude_json)
    yield _Location(Client.CLAUDE_CODE, user, home / ".claude/settings.json", "json", mcp_servers)
    yield from _agent_files(Client.CLAUDE_CODE, user, home / ".claude/agents")
    yield _Location(Client.CURSOR, user, home / ".cursor/mcp.json", "json", mcp_servers)
    for base in (".config", "Library/Application Support", "AppData/Roaming"):
        for product in ("Code", "Code - Insiders"):
            folder = home / base / product / "User"
            yield _Location(Client.VSCODE, user, folder / "mcp.json", "json", _at("servers"))
            yield _Location(
                Client.VSCODE, user, folder / "settings.json", "json", _at("mcp", "servers")
            )
    yield _Location(
        Client.WINDSURF, user, home / ".codeium/windsurf/mcp_config.json", "json", mcp_servers
    )
    yield _Location(Client.GEMINI_CLI, user, home / ".gemini/settings.json", "json", mcp_servers)
    yield _Location(Client.CODEX_CLI, user, home / ".codex/config.toml", "toml", _at("mcp_servers"))
    yield _Location(Client.CONTINUE, user, home / ".continue/config.yaml", "yaml", _continue)
    yield _Location(Client.CONTINUE, user, home / ".continue/config.json", "json", _continue)
    yield from _block_files(Client.CONTINUE, user, home / ".continue/mcpServers")
    if project is not None:
        yield _Location(Client.CLAUDE_CODE, proj, project / ".mcp.json", "json", mcp_servers)
        for settings in ("settings.json", "settings.local.json"):
            yield _Location(
                Client.CLAUDE_CODE, proj, project / ".claude" / settings, "json", mcp_servers
            )
        yield from _agent_files(Client.CLAUDE_CODE, proj, project / ".claude/agents")
        yield _Location(Client.CURSOR, proj, project / ".cursor/mcp.json", "json", mcp_servers)
        yield _Location(Client.VSCODE, proj, project / ".vscode/mcp.json", "json", _at("servers"))
        yield _Location(
            Client.VSCODE, proj, project / ".vscode/settings.json", "json", _at("mcp", "servers")
        )
        yield _Location(
            Client.GEMINI_CLI, proj, project / ".gemini/settings.json", "json", mcp_servers
        )
        yield _Location(
            Client.CODEX_CLI, proj, project / ".codex/config.toml", "toml", _at("mcp_servers")
        )
        yield from _block_files(Client.CONTINUE, proj, project / ".continue/mcpServers")
    for root in system_dirs:
        for sub in ("claude-code", "ClaudeCode"):
            yield _Location(
                Client.CLAUDE_CODE, system, root / sub / "managed-mcp.json", "json", mcp_servers
            )
        for sub in ("gemini-cli", "GeminiCli"):
            yield _Location(
                Client.GEMINI_CLI, system, root / sub / "settings.json", "json", mcp_servers
            )
        for name in ("config.toml", "managed_config.toml"):
            yield _Location(
                Client.CODEX_CLI, system, root / "codex" / name, "toml", _at("mcp_servers")
            )


def _agent_files(client: Client, scope: Scope, folder: Path) -> Iterator[_Location]:
    for path in _listing(folder, (".md",)):
        yield _Location(client, scope, path, "agent-md")


def _block_files(client: Client, scope: Scope, folder: Path) -> Iterator[_Location]:
    """Continue's ``mcpServers/`` folder: one YAML block or JSON config per file."""
    for path in _listing(folder, (".yaml", ".yml", ".json")):
        fmt = "json" if path.suffix == ".json" else "yaml"
        yield _Location(client, scope, path, fmt, _continue)


def _listing(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in suffixes)
    except OSError:
        return []  # absent or unreadable folder: nothing configured there that we can see


# --- reading and parsing -------------------------------------------------------------------


def _read(location: _Location, problems: list[Problem]) -> str | None:
    """Return the file's text; None if absent or (with a Problem) unreadable."""
    path = location.path

    def problem(reason: str) -> None:
        problems.append(Problem(location.client, location.scope, str(path), reason))

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        problem(f"unreadable: {exc.strerror or exc}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            problem("not a regular file; skipped")
            return None
        if info.st_size > MAX_FILE_BYTES:
            problem(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; skipped")
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        problem(f"unreadable: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem(f"not UTF-8 text: {exc.reason} at byte {exc.start}")
        return None


def _parse(fmt: str, text: str) -> object:
    """Parse a config file; raise ValueError with line information when malformed."""
    if fmt == "json":
        return parse_jsonc(text)
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(str(exc)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from exc


def parse_jsonc(text: str) -> Any:
    """Parse JSON with comments and trailing commas (JSONC), as VS Code and others accept.

    Comments are blanked out in place, so line and column numbers in errors still
    point into the original file.

    Raises:
        ValueError: not JSONC; the message has the line and column.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # fall through to the slower JSONC path, which most files never need
    try:
        return json.loads(_strip_trailing_commas(_strip_comments(text)))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def _strip_comments(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            in_string = c != '"'
            out.append(c)
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                raise ValueError(f"unterminated /* comment starting at line {line}")
            out.append(re.sub(r"[^\n]", " ", text[i : end + 2]))
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _strip_trailing_commas(text: str) -> str:
    chars = list(text)
    in_string = False
    i, n = 0, len(chars)
    while i < n:
        c = chars[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif c == ",":
            j = i + 1
            while j < n and chars[j] in " \t\r\n":
                j += 1
            if j < n and chars[j] in "}]":
                chars[i] = " "
        i += 1
    return "".join(chars)


# --- extracting server entries -------------------------------------------------------------


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _servers_in(value: object, pointer: str, shapes: list[str]) -> Iterator[_Entry]:
    """Servers as an object of ``name: entry`` (the common format)."""
    if not isinstance(value, Mapping):
        shapes.append(f"{pointer} should be an object of servers, got {describe_type(value)}")
        return
    for name, entry in value.items():
        yield f"{pointer}/{_escape(str(name))}", str(name), entry, None


def _at(*path: str) -> _Extract:
    """Extract the server object found at ``path`` (missing anywhere: no servers)."""

    def extract(document: object, shapes: list[str]) -> Iterator[_Entry]:
        current = document
        where = ""
        for part in path:
            if current is None and not where:
                return  # an empty YAML document configures nothing
            if not isinstance(current, Mapping):
                shapes.append(
                    f"{where or 'the top level'} should be an object, got {describe_type(current)}"
                )
                return
            if part not in current:
                return
            current = current[part]
            where += "/" + _escape(part)
        yield from _servers_in(current, where, shapes)

    return extract


def _claude_json(document: object, shapes: list[str]) -> Iterator[_Entry]:
    """``~/.claude.json``: user servers, plus each project's local servers."""
    yield from _at("mcpServers")(document, shapes)
    projects = document.get("projects") if isinstance(document, Mapping) else None
    if not isinstance(projects, Mapping):
        return
    for folder, settings in projects.items():
        if isinstance(settings, Mapping) and "mcpServers" in settings:
            pointer = f"/projects/{_escape(str(folder))}/mcpServers"
            for ptr, name, entry, _ in _servers_in(settings["mcpServers"], pointer, shapes):
                yield ptr, name, entry, Scope.PROJECT


def _continue(document: object, shapes: list[str]) -> Iterator[_Entry]:
    """Continue's three shapes of server lists.

    ``mcpServers`` as a list of named entries (config.yaml and YAML blocks), as a
    Claude-style object (JSON blocks), or the legacy config.json
    ``experimental.modelContextProtocolServers`` list of ``{transport: {...}}``.
    """
    if document is None:
        return
    if not isinstance(document, Mapping):
        shapes.append(f"top level should be an object, got {describe_type(document)}")
        return
    servers = document.get("mcpServers")
    if isinstance(servers, list):
        for i, entry in enumerate(servers):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            yield f"/mcpServers/{i}", str(name or f"#{i}"), entry, None
    elif servers is not None:
        yield from _servers_in(servers, "/mcpServers", shapes)
    experimental = document.get("experimental")
    legacy = (
        experimental.get("modelContextProtocolServers")
        if isinstance(experimental, Mapping)
        else None
    )
    if isinstance(legacy, list):
        for i, item in enumerate(legacy):
            pointer = f"/experimental/modelContextProtocolServers/{i}"
            transport = item.get("transport") if isinstance(item, Mapping) else None
            if not isinstance(transport, Mapping):
                shapes.append(f"{pointer}: no 'transport' object")
                continue
            name = item.get("name") if isinstance(item, Mapping) else None
            yield pointer, str(name or transport.get("command") or f"#{i}"), transport, None


def _server(
    location: _Location, scope: Scope, pointer: str, name: str, entry: object
) -> FoundServer:
    if not isinstance(entry, Mapping):
        raise _Shape(f"server {name!r} should be an object, got {describe_type(entry)}")
    command = entry.get("command")
    if command is not None and not isinstance(command, str):
        raise _Shape(f"server {name!r}: 'command' should be a string")
    raw_args = entry.get("args", [])
    if not isinstance(raw_args, list):
        raise _Shape(f"server {name!r}: 'args' should be a list")
    url = next(
        (v for k in ("url", "serverUrl", "httpUrl") if isinstance(v := entry.get(k), str)), None
    )
    kind = entry.get("type")
    if isinstance(kind, str) and kind:
        transport = kind
    elif command:
        transport = "stdio"
    elif isinstance(entry.get("url"), str) and location.client is Client.GEMINI_CLI:
        transport = "sse"  # Gemini CLI: url is SSE, httpUrl is streamable HTTP
    else:
        transport = "http" if url else "unknown"
    env = _names(entry.get("env"))
    for key in ("env_vars", "envVars"):
        listed = entry.get(key)
        if isinstance(listed, list):
            env += tuple(str(x) for x in listed if isinstance(x, str))
    token_var = entry.get("bearer_token_env_var")
    if isinstance(token_var, str):
        env += (token_var,)
    options = entry.get("requestOptions")
    headers = (
        _names(entry.get("headers"))
        + _names(entry.get("http_headers"))
        + _names(entry.get("env_http_headers"))
        + (_names(options.get("headers")) if isinstance(options, Mapping) else ())
    )
    enabled = entry.get("disabled") is not True and entry.get("enabled") is not False
    return FoundServer(
        client=location.client,
        scope=scope,
        file=str(location.path),
        name=name,
        transport=transport,
        command=_mask_arg(command) if command else None,
        args=_mask_args([str(a) for a in raw_args]),
        url=_clean_url(url) if url else None,
        env=tuple(dict.fromkeys(env)),
        headers=tuple(dict.fromkeys(headers)),
        enabled=enabled,
        pointer=pointer,
    )


def _names(value: object) -> tuple[str, ...]:
    return tuple(str(k) for k in value) if isinstance(value, Mapping) else ()


def _subagent(location: _Location, text: str, problems: list[Problem]) -> FoundAgent:
    """A Claude Code sub-agent: Markdown with YAML front matter (``name``, ``tools``)."""
    name = location.path.stem
    tools: tuple[str, ...] = ()
    match = re.match(r"\A---\r?\n(.*?)\r?\n---\s*(\r?\n|\Z)", text, re.DOTALL)
    if match:
        try:
            meta = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            problems.append(
                Problem(
                    location.client,
                    location.scope,
                    str(location.path),
                    f"malformed front matter: {str(exc).splitlines()[0]}",
                )
            )
            meta = None
        if isinstance(meta, Mapping):
            if isinstance(meta.get("name"), str) and meta["name"]:
                name = meta["name"]
            raw = meta.get("tools")
            if isinstance(raw, str):
                tools = tuple(t.strip() for t in raw.split(",") if t.strip())
            elif isinstance(raw, list):
                tools = tuple(str(t) for t in raw)
    return FoundAgent(location.client, location.scope, str(location.path), name, "subagent", tools)


# --- keeping secrets out of the report ------------------------------------------------------

_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw(or)?d|pwd|api[-_]?key|apikey|auth|bearer|credential|"
    r"private[-_]?key|access[-_]?key|session|cookie)"
)
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_|rk_|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|"
    r"eyJ|npm_|pypi-|hf_|lct_)[A-Za-z0-9_\-.+/=]{8,}$"
)


def _mask_args(args: list[str]) -> tuple[str, ...]:
    """Mask arguments that look like secrets (best effort; env names are the safe path).

    Masked: the value after a flag named like a secret (``--api-key X``), the value of
    ``--token=X`` / ``API_KEY=X`` / ``Authorization: Bearer X``, known token formats
    (``sk-…``, ``ghp_…``, JWTs …), and the credentials and query of URLs.
    """
    out: list[str] = []
    mask_next = False
    for arg in args:
        if mask_next and not arg.startswith("-"):
            out.append(_MASK)
            mask_next = False
            continue
        mask_next = arg.startswith("-") and "=" not in arg and bool(_SECRET_NAME.search(arg))
        out.append(_mask_arg(arg))
    return tuple(out)


def _mask_arg(arg: str) -> str:
    for separator in ("=", ":"):
        name, sep, value = arg.partition(separator)
        if sep and value and _SECRET_NAME.search(name) and "//" not in name:
            return f"{name}{sep}{' ' if value.startswith(' ') else ''}{_MASK}"
    if _SECRET_VALUE.match(arg):
        return _MASK
    if "://" in arg:
        return _clean_url(arg)
    return arg


def _clean_url(url: str) -> str:
    """Drop userinfo, query and fragment: the places URLs carry credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return _MASK
    if not parts.scheme or not host:
        return url if not _SECRET_VALUE.match(url) else _MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    cleaned = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return cleaned + ("?…" if parts.query else "")
