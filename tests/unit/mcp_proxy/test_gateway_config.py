"""The gateway configuration file: valid files load, wrong keys say which key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lictor.errors import ConfigError
from lictor.mcp_proxy.config import Mode, load_config, parse_config

MINIMAL: dict[str, Any] = {
    "lictor": {"policies": "policies"},
    "upstreams": [{"name": "time", "command": "mcp-server-time"}],
}


def test_minimal_config_has_safe_defaults(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, base=tmp_path)
    assert config.lictor.mode is Mode.IN_PROCESS
    assert config.lictor.policies == tmp_path / "policies"
    assert config.max_argument_bytes == 64 * 1024
    assert config.trust_on_first_use is True
    assert config.separator == "."
    assert config.upstreams[0].transport == "stdio"


def test_full_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        """
[gateway]
name = "gw"
max_argument_bytes = 100
manifest = "pins/m.json"
[identity]
agent_id = "a"
[[identity.tokens]]
agent_id = "b"
sha256 = "%s"
[lictor]
mode = "remote"
url = "http://127.0.0.1:8470/"
token_env = "T"
[[upstreams]]
name = "docs"
url = "https://docs.example/mcp"
headers = {Authorization = "Bearer x"}
labels = ["public"]
timeout_seconds = 5
"""
        % ("ab" * 32)
    )
    config = load_config(path, environ={"T": "secret"})
    assert config.lictor.url == "http://127.0.0.1:8470"
    assert config.lictor.token == "secret"  # noqa: S105 - a test value
    assert "secret" not in repr(config.lictor)
    assert config.manifest == tmp_path / "pins" / "m.json"
    assert config.identity.tokens[0].agent_id == "b"
    upstream = config.upstreams[0]
    assert (upstream.transport, upstream.call_timeout_seconds) == ("http", 5.0)
    assert load_config(tmp_path / "gw.toml", environ={"T": "s"}).manifest.name == "m.json"


def test_default_manifest_sits_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[lictor]\npolicies = "p"\n[[upstreams]]\nname = "t"\ncommand = "x"\n')
    assert load_config(path).manifest == tmp_path / "gateway.pins.json"


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"extra": 1}, "extra"),
        ({"upstreams": []}, "upstreams"),
        ({"upstreams": [{"name": "a.b", "command": "x"}]}, "name"),
        ({"upstreams": [{"name": "a", "command": "x", "url": "http://x"}]}, "exactly one"),
        ({"upstreams": [{"name": "a", "url": "ftp://x"}]}, "url"),
        ({"upstreams": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]}, "twice"),
        ({"gateway": {"separator": "/"}}, "separator"),
        (
            {"gateway": {"separator": "_"}, "upstreams": [{"name": "my_fs", "command": "x"}]},
            "contains",
        ),
        ({"gateway": {"max_argument_bytes": 0}}, "max_argument_bytes"),
        ({"gateway": {"trust_on_first_use": "yes"}}, "trust_on_first_use"),
        ({"lictor": {}}, "policies"),
        ({"lictor": {"mode": "cloud"}}, "mode"),
        ({"lictor": {"mode": "remote"}}, "url"),
        ({"lictor": {"mode": "remote", "url": "http://x", "token_env": "NOPE"}}, "NOPE"),
        (
            {"lictor": {"mode": "remote", "url": "http://x", "token": "a", "token_env": "B"}},
            "not both",
        ),
        ({"identity": {"tokens": [{"agent_id": "a", "sha256": "zz"}]}}, "sha256"),
    ],
)
def test_mistakes_name_the_key(change: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, **change}, environ={})
    assert names in str(caught.value)


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[gateway\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "bad.toml")


def test_the_example_gateway_config_and_policies_load() -> None:
    from lictor.service.policies import load_bundle, load_inventory

    example = Path(__file__).resolve().parents[3] / "examples" / "integrations" / "mcp-gateway"
    config = load_config(example / "gateway.toml")
    assert [u.name for u in config.upstreams] == ["time", "fs"]
    assert config.lictor.policies is not None
    assert load_bundle(config.lictor.policies).policy.rules
    assert config.lictor.agents is not None
    assert load_inventory(config.lictor.agents)[0].id == "notes-assistant"
