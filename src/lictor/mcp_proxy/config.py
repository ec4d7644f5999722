"""The gateway's configuration file (TOML): upstreams, identity, where decisions come from.

A complete example, with every key (paths are relative to the file)::

    [gateway]
    name = "lictor-gateway"         # the server name MCP clients see
    session_id = ""                 # fixed Lictor session; default: the MCP session
    max_argument_bytes = 65536      # larger tools/call arguments are refused
    call_timeout_seconds = 30       # an upstream call that takes longer is abandoned
    connect_timeout_seconds = 30    # starting or reaching an upstream
    review_timeout_seconds = 0      # wait this long for a reviewer's verdict (0: answer "held")
    manifest = "gateway.pins.json"  # pinned tool definitions (default: <config>.pins.json)
    trust_on_first_use = true       # pin unseen clean tools; false: block until approved
    separator = "."                 # <upstream><separator><tool>

    [identity]
    agent_id = "deploy-bot"         # stdio clients, and HTTP clients without a token
    principal = "emma@corp.example" # optional: on whose behalf
    [[identity.tokens]]             # HTTP bearer tokens (in-process mode), by SHA-256
    agent_id = "oncall-assistant"
    sha256 = "9f86d081884c7d65..."

    [lictor]
    mode = "in-process"             # or "remote"
    policies = "policies"           # in-process: the policy bundle
    agents = "agents.yaml"          # in-process: the inventory
    audit_store = "sqlite:///audit.db"  # in-process, optional: durable audit trail
    # url = "http://127.0.0.1:8470" # remote: the Lictor server
    # token_env = "LICTOR_AGENT_TOKEN"  # remote: the agent credential (or token = "...")
    # reader_token_env = "LICTOR_READER_TOKEN"  # remote, optional: to filter tools/list

    [[upstreams]]
    name = "time"                   # letters, digits, _ and - (it prefixes tool names)
    command = "mcp-server-time"     # stdio: a command ...
    args = ["--local-timezone", "UTC"]
    env = {}
    labels = ["public"]             # data labels reported with every result
    [[upstreams]]
    name = "docs"
    url = "http://127.0.0.1:9000/mcp"   # ... or streamable HTTP
    headers = {Authorization = "Bearer ..."}

Nothing here does I/O but reading the file; :func:`load_config` raises ``ConfigError``
naming the key that is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lictor.errors import ConfigError

UPSTREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEPARATORS = (".", "__", "_", "-")
DEFAULT_MAX_ARGUMENT_BYTES = 64 * 1024


class Mode(StrEnum):
    """Where decisions come from."""

    IN_PROCESS = "in-process"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream MCP server: a stdio command or a streamable HTTP URL."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    call_timeout_seconds: float | None = None

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"


@dataclass(frozen=True, slots=True)
class TokenBinding:
    """An HTTP bearer token (by its SHA-256, hex) and the agent it stands for."""

    agent_id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Who the gateway's clients act as."""

    agent_id: str | None = None
    principal: str | None = None
    tokens: tuple[TokenBinding, ...] = ()


@dataclass(frozen=True, slots=True)
class LictorConfig:
    """Where decisions come from: an embedded Governor or a remote ``lictor serve``."""

    mode: Mode
    policies: Path | None = None
    agents: Path | None = None
    audit_store: str | None = None
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    reader_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The whole gateway configuration."""

    upstreams: tuple[UpstreamConfig, ...]
    lictor: LictorConfig
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    name: str = "lictor-gateway"
    session_id: str | None = None
    max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES
    call_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 30.0
    review_timeout_seconds: float = 0.0
    manifest: Path = Path("gateway.pins.json")
    trust_on_first_use: bool = True
    separator: str = "."

    def upstream(self, name: str) -> UpstreamConfig | None:
        """Return the upstream called ``name``, if any."""
        return next((u for u in self.upstreams if u.name == name), None)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read and validate a gateway configuration file.

    Raises:
        ConfigError: the file is unreadable, not TOML, or a key is missing or wrong.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(
        data, base=path.parent, default_manifest=path.with_suffix(".pins.json"), environ=environ
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    base: Path = Path(),
    default_manifest: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProxyConfig:
    """Validate an already parsed configuration (see the module docstring for the keys).

    Raises:
        ConfigError: naming the key that is missing or wrong.
    """
    env = os.environ if environ is None else environ
    _only(data, "", {"gateway", "identity", "lictor", "upstreams"})
    gateway = _table(data, "gateway")
    _only(
        gateway,
        "gateway.",
        {
            "name",
            "session_id",
            "max_argument_bytes",
            "call_timeout_seconds",
            "connect_timeout_seconds",
            "review_timeout_seconds",
            "manifest",
            "trust_on_first_use",
            "separator",
        },
    )
    separator = _str(gateway, "gateway.separator", ".")
    if separator not in SEPARATORS:
        raise ConfigError(f"gateway.separator must be one of {', '.join(map(repr, SEPARATORS))}")
    upstreams = _upstreams(data.get("upstreams"), base, separator)
    manifest = gateway.get("manifest")
    return ProxyConfig(
        upstreams=upstreams,
        lictor=_lictor(_table(data, "lictor"), base, env),
        identity=_identity(_table(data, "identity")),
        name=_str(gateway, "gateway.name", "lictor-gateway"),
        session_id=_str(gateway, "gateway.session_id", "") or None,
        max_argument_bytes=_positive_int(
            gateway, "gateway.max_argument_bytes", DEFAULT_MAX_ARGUMENT_BYTES
        ),
        call_timeout_seconds=_positive_float(gateway, "gateway.call_timeout_seconds", 30.0),
        connect_timeout_seconds=_positive_float(gateway, "gateway.connect_timeout_seconds", 30.0),
        review_timeout_seconds=_review_timeout(gateway),
        manifest=(
            _path(base, _str(gateway, "gateway.manifest", ""))
            if manifest is not None
            else (default_manifest or base / "gateway.pins.json")
        ),
        trust_on_first_use=_bool(gateway, "gateway.trust_on_first_use", True),
        separator=separator,
    )


def _upstreams(value: object, base: Path, separator: str) -> tuple[UpstreamConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("add at least one [[upstreams]] table (name plus command or url)")
    seen: set[str] = set()
    result = []
    for i, item in enumerate(value):
        where = f"upstreams[{i}]."
        if not isinstance(item, Mapping):
            raise ConfigError(f"upstreams[{i}] must be a table")
        _only(
            item,
            where,
            {
                "name",
                "command",
                "args",
                "env",
                "cwd",
                "url",
                "headers",
                "labels",
                "timeout_seconds",
            },
        )
        name = _str(item, where + "name", "")
        if not UPSTREAM_NAME.match(name):
            raise ConfigError(
                f"{where}name must be 1-64 letters, digits, '_' or '-' (it prefixes tool names)"
            )
        if separator in name:
            # Names split back at the first separator; one inside a name would be ambiguous.
            raise ConfigError(f"{where}name {name!r} contains the separator {separator!r}")
        if name in seen:
            raise ConfigError(f"{where}name {name!r} is used twice")
        seen.add(name)
        command = item.get("command")
        url = item.get("url")
        if (command is None) == (url is None):
            raise ConfigError(f"{where[:-1]}: give exactly one of command (stdio) or url (HTTP)")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise ConfigError(f"{where}url must be an http:// or https:// URL")
        cwd = item.get("cwd")
        timeout = item.get("timeout_seconds")
        result.append(
            UpstreamConfig(
                name=name,
                command=_str(item, where + "command", "") if command is not None else None,
                args=_strings(item, where + "args"),
                env=_str_map(item, where + "env") if "env" in item else None,
                cwd=_path(base, _str(item, where + "cwd", "")) if cwd is not None else None,
                url=url,
                headers=_str_map(item, where + "headers"),
                labels=_strings(item, where + "labels"),
                call_timeout_seconds=(
                    _positive_float(item, where + "timeout_seconds", 0.0)
                    if timeout is not None
                    else None
                ),
            )
        )
    return tuple(result)


def _lictor(table: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> LictorConfig:
    _only(
        table,
        "lictor.",
        {
            "mode",
            "policies",
            "agents",
            "audit_store",
            "url",
            "token",
            "token_env",
            "reader_token",
            "reader_token_env",
        },
    )
    try:
        mode = Mode(_str(table, "lictor.mode", Mode.IN_PROCESS.value))
    except ValueError:
        raise ConfigError("lictor.mode must be 'in-process' or 'remote'") from None
    if mode is Mode.IN_PROCESS:
        policies = table.get("policies")
        if policies is None:
            raise ConfigError("lictor.policies is required in in-process mode (a policy bundle)")
        agents = table.get("agents")
        return LictorConfig(
            mode=mode,
            policies=_path(base, _str(table, "lictor.policies", "")),
            agents=_path(base, _str(table, "lictor.agents", "")) if agents is not None else None,
            audit_store=_str(table, "lictor.audit_store", "") or None,
        )
    url = _str(table, "lictor.url", "")
    if not url.startswith(("http://", "https://")):
        raise ConfigError("lictor.url is required in remote mode (http:// or https://)")
    return LictorConfig(
        mode=mode,
        url=url.rstrip("/"),
        token=_secret(table, "token", env),
        reader_token=_secret(table, "reader_token", env),
    )


def _secret(table: Mapping[str, Any], key: str, env: Mapping[str, str]) -> str | None:
    """A credential, given inline or (better) by the name of an environment variable."""
    inline = table.get(key)
    variable = table.get(f"{key}_env")
    if inline is not None and variable is not None:
        raise ConfigError(f"give lictor.{key} or lictor.{key}_env, not both")
    if variable is not None:
        name = _str(table, f"lictor.{key}_env", "")
        value = env.get(name)
        if not value:
            raise ConfigError(f"lictor.{key}_env names {name!r}, which is not set")
        return value
    if inline is None:
        return None
    return _str(table, f"lictor.{key}", "") or None


def _identity(table: Mapping[str, Any]) -> IdentityConfig:
    _only(table, "identity.", {"agent_id", "principal", "tokens"})
    tokens = []
    raw = table.get("tokens", [])
    if not isinstance(raw, list):
        raise ConfigError("identity.tokens must be an array of tables")
    for i, item in enumerate(raw):
        where = f"identity.tokens[{i}]."
        if not isinstance(item, Mapping):
            raise ConfigError(f"identity.tokens[{i}] must be a table")
        _only(item, where, {"agent_id", "sha256"})
        digest = _str(item, where + "sha256", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ConfigError(f"{where}sha256 must be 64 hex digits (sha256 of the token)")
        agent = _str(item, where + "agent_id", "")
        if not agent:
            raise ConfigError(f"{where}agent_id is required")
        tokens.append(TokenBinding(agent_id=agent, sha256=digest))
    return IdentityConfig(
        agent_id=_str(table, "identity.agent_id", "") or None,
        principal=_str(table, "identity.principal", "") or None,
        tokens=tuple(tokens),
    )


# -- small typed readers ---------------------------------------------------------------------


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key {where}{unknown[0]} (allowed: {', '.join(sorted(allowed))})"
        )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


def _positive_int(table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer")
    return value


def _review_timeout(gateway: Mapping[str, Any]) -> float:
    """``gateway.review_timeout_seconds``: 0 (do not wait) up to one hour."""
    value = gateway.get("review_timeout_seconds", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ConfigError("gateway.review_timeout_seconds must be a number from 0 to 3600")
    return float(value)


def _positive_float(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number")
    return float(value)


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key.rsplit(".", 1)[-1], [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be an array of strings")
    return tuple(value)


def _str_map(table: Mapping[str, Any], key: str) -> dict[str, str]:
    value = table.get(key.rsplit(".", 1)[-1], {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{key} must be a table of strings")
    return dict(value)


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
