"""Typed settings, loaded once at startup from ``lictor.toml`` and ``LICTOR_*`` variables.

Precedence: defaults < the TOML file < environment variables. Every setting has a safe
default, so ``lictor serve`` runs with embedded SQLite and nothing else. There is no
setting that makes Lictor allow what its policy does not.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lictor.errors import ConfigError

ENV_PREFIX = "LICTOR_"
CLIENT_VARIABLES = frozenset({"LICTOR_CONFIG", "LICTOR_URL", "LICTOR_TOKEN"})
"""``LICTOR_*`` variables that are not settings: the config file, and the server and token
the API commands (``lictor reviews``, ``lictor agents quarantine``) talk to."""


class TrustedIssuerSettings(BaseModel):
    """A company IdP whose tokens may start a delegation chain (``[[trusted_issuers]]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str
    audiences: list[str] = Field(min_length=1)
    jwks_url: str | None = Field(None, description="Default: from the issuer's discovery")
    subject_claim: str = "sub"
    groups_claim: str = "groups"
    scope_claims: list[str] = Field(default_factory=lambda: ["scope", "scp"])
    attribute_claims: dict[str, str] = Field(default_factory=dict)


class Settings(BaseModel):
    """Everything ``lictor serve`` and the operator commands need."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    data_dir: Path = Path("lictor-data")
    store_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/lictor.db"
    )
    policies: Path = Path("policies")
    policy_watch: bool = Field(False, description="Reload the policy directory when it changes")
    policy_poll_seconds: float = Field(
        1.0, gt=0, le=2.0, description="How often a replica checks the active policy version"
    )
    agents: Path | None = Field(None, description="Inventory YAML loaded into the store at start")
    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_seconds: float = Field(60.0, gt=0)
    audit_batch_max: int = Field(1024, ge=1)
    audit_timeout_seconds: float = Field(10.0, gt=0)
    audit_sync: Literal["full", "os"] = Field(
        "full",
        description="full: fsync every audit commit (survives power loss); os: SQLite "
        "synchronous=NORMAL, survives a process crash but not a power loss (docs/audit.md)",
    )
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the port")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    redact_arguments: bool = False
    token_issuer: str = Field("urn:lictor", description="The iss of Lictor's delegation tokens")
    token_audiences: list[str] = Field(default_factory=lambda: ["lictor"], min_length=1)
    token_ttl_seconds: int = Field(300, gt=0, le=86400)
    token_max_depth: int = Field(4, ge=1, le=16)
    token_key_file: Path | None = Field(None, description="Default: <data_dir>/token-key.pem")
    trusted_issuers: list[TrustedIssuerSettings] = Field(default_factory=list)
    shadow_agents: Literal["deny", "review"] = Field(
        "deny", description="What a request from an unregistered agent gets"
    )
    syslog: str | None = Field(None, description="udp://host:port or tcp://host:port")
    otel_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint")
    log_level: str = "info"
    risk: bool = Field(True, description="Session context, budgets and baselines (docs/risk.md)")
    risk_learning_observations: int = Field(50, ge=0)
    risk_learning_seconds: float = Field(86_400.0, ge=0)
    risk_store: str | None = Field(
        None,
        pattern=r"^(redis|rediss|unix)://",
        description="Where risk state (sessions, budgets, baselines) lives: unset, in the "
        "store_url database; redis://host:6379/0 (rediss:// for TLS, unix:// for a socket; "
        "?prefix=... namespaces the keys), in Redis, shared by every replica given the same "
        "URL (docs/risk.md#redis)",
    )
    risk_session_retention_seconds: float = Field(
        30 * 86_400.0,
        ge=0,
        description="A risk session idle this long is deleted (hourly, SQL store; Redis "
        "expires keys itself): resumed later, it starts empty. 0 keeps sessions forever",
    )
    alerts: dict[str, Any] = Field(
        default_factory=dict,
        description="[alerts] table: rules, sinks, playbooks, file (docs/alerts.md)",
    )
    review_seconds: float = Field(
        900.0, gt=0, description="How long a review stays pending before it expires (deny)"
    )
    review_approval_seconds: float = Field(
        900.0, gt=0, description="How long an approval waits for the agent's one retry"
    )

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to SQLite in the data directory."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'lictor.db').as_posix()}"

    @property
    def token_key_path(self) -> Path:
        """Where the token-signing key lives (created by ``lictor init``, mode 0600)."""
        return self.token_key_file if self.token_key_file else self.data_dir / "token-key.pem"

    @property
    def checkpoint_key_path(self) -> Path:
        """Where the Ed25519 checkpoint key lives (created by ``lictor init``)."""
        return self.data_dir / "checkpoint-key.pem"


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Load settings from a TOML file (optional) and ``LICTOR_*`` variables.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key or bad value.
    """
    values: dict[str, Any] = {}
    env = dict(os.environ) if env is None else env
    file = Path(path) if path else (Path(env["LICTOR_CONFIG"]) if "LICTOR_CONFIG" in env else None)
    if file is None and Path("lictor.toml").is_file():
        file = Path("lictor.toml")
    if file is not None:
        try:
            with file.open("rb") as handle:
                values.update(tomllib.load(handle))
            alerts = values.get("alerts")
            if isinstance(alerts, dict) and isinstance(alerts.get("file"), str):
                alerts["file"] = str(file.parent / alerts["file"])  # relative to the toml
        except OSError as exc:
            raise ConfigError(f"cannot read config {str(file)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    fields = Settings.model_fields
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key in CLIENT_VARIABLES:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in fields:
            values[name] = value
        elif not name.startswith("test_"):
            raise ConfigError(f"unknown setting {key}; known: {', '.join(sorted(fields))}")
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"setting {where}: {first['msg']}") from None
