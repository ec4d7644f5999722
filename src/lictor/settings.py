"""Typed settings, loaded once at startup from ``lictor.toml`` and ``LICTOR_*`` variables.

Precedence: defaults < the TOML file < environment variables. Every setting has a safe
default, so ``lictor serve`` runs with embedded SQLite and nothing else. There is no
setting that makes Lictor allow what its policy does not.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lictor.errors import ConfigError

ENV_PREFIX = "LICTOR_"


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
    agents: Path | None = Field(None, description="Inventory YAML loaded into the store at start")
    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_seconds: float = Field(60.0, gt=0)
    audit_batch_max: int = Field(1024, ge=1)
    audit_timeout_seconds: float = Field(10.0, gt=0)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    redact_arguments: bool = False
    syslog: str | None = Field(None, description="udp://host:port or tcp://host:port")
    otel_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint")
    log_level: str = "info"

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to SQLite in the data directory."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'lictor.db').as_posix()}"

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
        except OSError as exc:
            raise ConfigError(f"cannot read config {str(file)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    fields = Settings.model_fields
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == "LICTOR_CONFIG":
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
