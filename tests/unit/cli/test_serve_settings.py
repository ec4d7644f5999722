"""``serve --workers`` hands its settings to spawned workers as JSON; nothing may change."""

from __future__ import annotations

from pathlib import Path

import pytest

from lictor.errors import ConfigError
from lictor.settings import Settings, load_settings


def test_settings_survive_the_trip_to_a_worker(tmp_path: Path) -> None:
    config = tmp_path / "lictor.toml"
    config.write_text(
        'data_dir = "data"\nworkers = 3\naudit_sync = "os"\nport = 0\n'
        'agents = "agents.yaml"\nredact_arguments = true\ncheckpoint_seconds = 2.5\n'
    )
    settings = load_settings(config, env={})

    assert Settings.model_validate_json(settings.model_dump_json()) == settings
    assert (settings.workers, settings.audit_sync) == (3, "os")


def test_durable_audit_and_one_process_are_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no lictor.toml here
    settings = load_settings(None, env={})
    assert settings.audit_sync == "full"
    assert settings.workers == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("LICTOR_AUDIT_SYNC", "never"), ("LICTOR_WORKERS", "0"), ("LICTOR_WORKERS", "many")],
)
def test_bad_durability_or_worker_settings_are_config_errors(
    name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        load_settings(None, env={name: value})
