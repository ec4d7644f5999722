"""Discovery: fake home, project and system directories with real-format client configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lictor.cli.discover import discover_command
from lictor.core.agents import Agent
from lictor.core.requests import AgentId
from lictor.identity.discover import (
    Client,
    DiscoveryReport,
    FoundServer,
    Scope,
    default_system_dirs,
    discover,
    parse_jsonc,
)

SECRETS = [
    "ghp_abcdefghijklmnop1234",
    "s3cr3t-db-password",
    "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
    "sk-live-0123456789abcdef",
    "cursor-query-key-999",
    "codex-env-value-42",
    "hunter2-in-args",
    "gemini-header-secret",
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def machine(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, project, etc = tmp_path / "home", tmp_path / "project", tmp_path / "etc"
    # Claude Desktop, Linux and macOS locations (plain JSON).
    write(
        home / ".config/Claude/claude_desktop_config.json",
        json.dumps(
            {
                "mcpServers": {
                    "filesystem": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"],
                    },
                    "github": {
                        "command": "docker",
                        "args": [
                            "run",
                            "-i",
                            "--rm",
                            "-e",
                            "GITHUB_PERSONAL_ACCESS_TOKEN",
                            "ghcr.io/github/github-mcp-server",
                        ],
                        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": SECRETS[0]},
                    },
                }
            }
        ),
    )
    write(
        home / "Library/Application Support/Claude/claude_desktop_config.json",
        json.dumps({"mcpServers": {"notes": {"command": "uvx", "args": ["notes-mcp"]}}}),
    )
    # Claude Code: user servers, per-project servers, settings, a sub-agent.
    write(
        home / ".claude.json",
        json.dumps(
            {
                "numStartups": 42,
                "mcpServers": {
                    "sentry": {
                        "type": "http",
                        "url": "https://mcp.sentry.dev/mcp",
                        "headers": {"Authorization": SECRETS[2]},
                    }
                },
                "projects": {
                    "/home/me/app": {
                        "allowedTools": [],
                        "mcpServers": {
                            "postgres": {
                                "type": "stdio",
                                "command": "npx",
                                "args": [
                                    "-y",
                                    "@modelcontextprotocol/server-postgres",
                                    f"postgresql://app:{SECRETS[1]}@db.internal/app",
                                ],
                                "env": {},
                            }
                        },
                    }
                },
            }
        ),
    )
    write(home / ".claude/settings.json", json.dumps({"permissions": {"allow": ["Bash(ls:*)"]}}))
    write(
        home / ".claude/agents/code-reviewer.md",
        "---\nname: code-reviewer\ndescription: Reviews diffs\ntools: Read, Grep, Bash\n---\n"
        "\nYou review code.\n",
    )
    # Cursor: remote server with a key in the query string.
    write(
        home / ".cursor/mcp.json",
        json.dumps(
            {
                "mcpServers": {
                    "linear": {"url": f"https://mcp.linear.app/sse?api_key={SECRETS[4]}"},
                    "stripe": {
                        "command": "npx",
                        "args": ["-y", "@stripe/mcp", f"--api-key={SECRETS[3]}"],
                        "env": {"STRIPE_ACCOUNT": "acct_1"},
                    },
                }
            }
        ),
    )
    # VS Code user settings: JSONC with comments and a trailing comma.
    write(
        home / ".config/Code/User/settings.json",
        """{
  // editor settings
  "editor.fontSize": 13,
  /* MCP servers, VS Code's own format */
  "mcp": {
    "servers": {
      "playwright": {"command": "npx", "args": ["@playwright/mcp@latest"]},
    },
  },
}
""",
    )
    write(
        home / ".config/Code/User/mcp.json",
        '{"servers": {"fetch": {"type": "stdio", "command": "uvx", "args": ["mcp-server-fetch"]}}}',
    )
    write(
        home / ".codeium/windsurf/mcp_config.json",
        json.dumps(
            {
                "mcpServers": {
                    "context7": {"serverUrl": "https://mcp.context7.com/mcp", "disabled": True}
                }
            }
        ),
    )
    write(
        home / ".gemini/settings.json",
        """{
  "theme": "GitHub",
  // Gemini CLI: command, url (SSE) or httpUrl (streamable HTTP)
  "mcpServers": {
    "amap": {
      "httpUrl": "https://mcp.amap.com/mcp",
      "headers": {"X-Api-Key": "gemini-header-secret"}
    },
    "legacy-sse": {"url": "http://localhost:8080/sse"},
    "local": {
      "command": "python",
      "args": ["-m", "tools_server", "--password", "hunter2-in-args"],
      "cwd": "./srv"
    }
  }
}""",
    )
    write(
        home / ".codex/config.toml",
        f"""model = "o4-mini"

[mcp_servers.docs]
command = "npx"
args = ["-y", "mcp-docs"]
env = {{ "DOCS_TOKEN" = "{SECRETS[5]}" }}

[mcp_servers.remote]
url = "https://mcp.example.com/mcp"
bearer_token_env_var = "REMOTE_MCP_TOKEN"
enabled = false
""",
    )
    write(
        home / ".continue/config.yaml",
        """name: My Assistant
version: 0.0.1
schema: v1
mcpServers:
  - name: SQLite
    command: npx
    args: ["-y", "mcp-sqlite", "/data/app.db"]
    env:
      SQLITE_KEY: not-shown
""",
    )
    write(
        home / ".continue/config.json",
        json.dumps(
            {
                "experimental": {
                    "modelContextProtocolServers": [
                        {
                            "transport": {
                                "type": "stdio",
                                "command": "uvx",
                                "args": ["mcp-server-git"],
                            }
                        }
                    ]
                }
            }
        ),
    )
    # The project: Claude Code .mcp.json, Cursor, VS Code (JSONC), a Continue block.
    write(
        project / ".mcp.json",
        json.dumps(
            {"mcpServers": {"jira": {"type": "sse", "url": "https://mcp.atlassian.com/v1/sse"}}}
        ),
    )
    write(
        project / ".cursor/mcp.json",
        json.dumps({"mcpServers": {"internal-api": {"command": "node", "args": ["tools/mcp.js"]}}}),
    )
    write(
        project / ".vscode/mcp.json",
        """{
  // Workspace MCP servers
  "inputs": [{"type": "promptString", "id": "token", "password": true}],
  "servers": {
    "github": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/", // remote
      "headers": {"Authorization": "Bearer ${input:token}"}
    }
  }
}""",
    )
    write(
        project / ".continue/mcpServers/browser.yaml",
        "name: Browser\nversion: 0.0.1\nschema: v1\nmcpServers:\n"
        '  - name: Browser\n    command: npx\n    args: ["@browsermcp/mcp"]\n',
    )
    # System scope: managed Claude Code and Gemini CLI settings.
    write(
        etc / "claude-code/managed-mcp.json",
        json.dumps(
            {"mcpServers": {"company-kb": {"type": "http", "url": "https://kb.corp.example/mcp"}}}
        ),
    )
    write(etc / "gemini-cli/settings.json", json.dumps({"mcpServers": {}}))
    return home, project, etc


def names(report: DiscoveryReport) -> set[tuple[str, str, str]]:
    return {(s.client.value, s.scope.value, s.name) for s in report.servers}


def server(report: DiscoveryReport, name: str) -> FoundServer:
    (found,) = [s for s in report.servers if s.name == name]
    return found


def test_finds_servers_of_every_client_in_every_scope(machine: tuple[Path, Path, Path]) -> None:
    home, project, etc = machine
    report = discover(home, project, [etc])
    assert names(report) == {
        ("claude-desktop", "user", "filesystem"),
        ("claude-desktop", "user", "github"),
        ("claude-desktop", "user", "notes"),
        ("claude-code", "user", "sentry"),
        ("claude-code", "project", "postgres"),
        ("claude-code", "project", "jira"),
        ("claude-code", "system", "company-kb"),
        ("cursor", "user", "linear"),
        ("cursor", "user", "stripe"),
        ("cursor", "project", "internal-api"),
        ("vscode", "user", "playwright"),
        ("vscode", "user", "fetch"),
        ("vscode", "project", "github"),
        ("windsurf", "user", "context7"),
        ("gemini-cli", "user", "amap"),
        ("gemini-cli", "user", "legacy-sse"),
        ("gemini-cli", "user", "local"),
        ("codex-cli", "user", "docs"),
        ("codex-cli", "user", "remote"),
        ("continue", "user", "SQLite"),
        ("continue", "user", "uvx"),
        ("continue", "project", "Browser"),
    }
    assert report.problems == ()


def test_entries_are_normalised(machine: tuple[Path, Path, Path]) -> None:
    home, project, etc = machine
    report = discover(home, project, [etc])
    (github,) = [
        s for s in report.servers if s.name == "github" and s.client is Client.CLAUDE_DESKTOP
    ]
    assert github.transport == "stdio"
    assert github.command == "docker"
    assert github.env == ("GITHUB_PERSONAL_ACCESS_TOKEN",)
    assert github.pointer == "/mcpServers/github"
    assert github.file == str(home / ".config/Claude/claude_desktop_config.json")
    sentry = server(report, "sentry")
    assert (sentry.transport, sentry.url, sentry.headers) == (
        "http",
        "https://mcp.sentry.dev/mcp",
        ("Authorization",),
    )
    postgres = server(report, "postgres")
    assert postgres.pointer == "/projects/~1home~1me~1app/mcpServers/postgres"
    assert postgres.args[-1] == "postgresql://db.internal/app"
    assert server(report, "amap").transport == "http"
    assert server(report, "legacy-sse").transport == "sse"
    assert server(report, "local").args == ("-m", "tools_server", "--password", "***")
    assert server(report, "stripe").args[-1] == "--api-key=***"
    assert server(report, "linear").url == "https://mcp.linear.app/sse?…"
    remote = server(report, "remote")
    assert remote.env == ("REMOTE_MCP_TOKEN",)
    assert remote.enabled is False
    assert server(report, "context7").enabled is False
    assert server(report, "docs").env == ("DOCS_TOKEN",)
    assert server(report, "SQLite").env == ("SQLITE_KEY",)
    assert server(report, "uvx").pointer == "/experimental/modelContextProtocolServers/0"


def test_no_secret_value_ever_reaches_the_report(machine: tuple[Path, Path, Path]) -> None:
    home, project, etc = machine
    dumped = json.dumps(discover(home, project, [etc]).to_json())
    for secret in [*SECRETS, "not-shown", "acct_1"]:
        assert secret not in dumped


def test_agents_are_the_clients_found_and_claude_sub_agents(
    machine: tuple[Path, Path, Path],
) -> None:
    home, project, etc = machine
    report = discover(home, project, [etc])
    clients = {(a.name, a.scope.value) for a in report.agents if a.kind == "client"}
    assert ("claude-code", "user") in clients
    assert ("claude-code", "system") in clients
    assert ("gemini-cli", "system") in clients  # found, even with no servers configured
    assert {c for c, _ in clients} == {c.value for c in Client}
    (reviewer,) = [a for a in report.agents if a.kind == "subagent"]
    assert (reviewer.name, reviewer.tools) == ("code-reviewer", ("Read", "Grep", "Bash"))


def test_inventory_marks_known_and_shadow_findings(machine: tuple[Path, Path, Path]) -> None:
    home, project, etc = machine
    inventory = [
        Agent(id=AgentId("claude-code"), attributes={"mcp_servers": ["sentry", "jira"]}),
        Agent(id=AgentId("code-reviewer")),
        Agent(id=AgentId("company-kb")),
    ]
    report = discover(home, project, [etc], inventory=inventory)
    known = {s.name for s in report.servers if s.in_inventory}
    assert known == {"sentry", "jira", "company-kb"}
    assert {a.name for a in report.agents if a.in_inventory} == {"claude-code", "code-reviewer"}
    assert "cursor" in {a.name for a in report.shadow_agents}
    assert len(report.shadow_servers) == len(report.servers) - 3
    assert report.to_json()["summary"]["shadow_servers"] == len(report.servers) - 3


def test_without_inventory_nothing_is_marked(machine: tuple[Path, Path, Path]) -> None:
    home, project, etc = machine
    report = discover(home, project, [etc])
    assert {s.in_inventory for s in report.servers} == {None}
    assert report.shadow_servers == ()


def test_bad_files_are_reported_not_fatal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / ".cursor/mcp.json", '{"mcpServers": {"a": {"command": "x"},}')  # unclosed
    write(home / ".codex/config.toml", "[mcp_servers.docs\ncommand = 1\n")
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini/settings.json").write_bytes(b'{"mcpServers": {"\xff": {}}}')
    (home / ".claude.json").mkdir()  # a directory where a file should be
    write(home / ".codeium/windsurf/mcp_config.json", '{"mcpServers": ["not", "an", "object"]}')
    write(
        home / ".config/Claude/claude_desktop_config.json",
        json.dumps(
            {
                "mcpServers": {
                    "bad": "npx server",
                    "args": {"command": "x", "args": "-y"},
                    "ok": {"command": "y"},
                }
            }
        ),
    )
    write(home / ".continue/config.yaml", "mcpServers: [unclosed\n")
    write(home / ".claude/agents/broken.md", "---\nname: [broken\n---\nbody\n")
    report = discover(home, None, [])
    reasons = {Path(p.file).name: p.reason for p in report.problems}
    assert "line 1" in reasons["mcp.json"]
    assert reasons["config.toml"].startswith("malformed:")
    assert "UTF-8" in reasons["settings.json"]
    assert reasons[".claude.json"] == "not a regular file; skipped"
    assert "should be an object of servers" in reasons["mcp_config.json"]
    assert "malformed" in reasons["config.yaml"]
    assert "front matter" in reasons["broken.md"]
    desktop = [p.reason for p in report.problems if p.client is Client.CLAUDE_DESKTOP]
    assert len(desktop) == 2  # "bad" is not an object; "args" has args that are not a list
    assert [s.name for s in report.servers] == ["ok"]  # the good entry still counts
    assert [a.name for a in report.agents if a.kind == "subagent"] == ["broken"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_never_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    os.mkfifo(home / ".cursor/mcp.json")  # reading it would block forever
    report = discover(home, None, [])
    assert [p.reason for p in report.problems] == ["not a regular file; skipped"]


def test_likely_secrets_in_arguments_are_masked(tmp_path: Path) -> None:
    args = [
        "--token",
        "opaque-value-1",
        "API_KEY=opaque-value-2",
        "--header",
        "Authorization: Bearer opaque-value-3",
        "xoxb-1234567890-abcdef",
        "https://user:opaque-value-4@host.example:8443/path?key=opaque-value-5#frag",
        "--verbose",
        "plain",
    ]
    write(
        tmp_path / ".cursor/mcp.json",
        json.dumps({"mcpServers": {"s": {"command": "x", "args": args}}}),
    )
    (found,) = discover(tmp_path, None, []).servers
    assert found.args == (
        "--token",
        "***",
        "API_KEY=***",
        "--header",
        "Authorization: ***",
        "***",
        "https://host.example:8443/path?…",
        "--verbose",
        "plain",
    )
    assert "opaque-value" not in json.dumps(found.to_json())


def test_less_common_shapes(tmp_path: Path) -> None:
    write(
        tmp_path / ".continue/mcpServers/claude-style.json",
        json.dumps({"mcpServers": {"memory": {"command": "npx", "args": ["memory-mcp"]}}}),
    )
    write(tmp_path / ".continue/config.yaml", "")  # empty: configures nothing
    write(
        tmp_path / ".continue/config.json",
        json.dumps({"experimental": {"modelContextProtocolServers": [{"name": "x"}]}}),
    )
    write(
        tmp_path / ".codex/config.toml",
        '[mcp_servers.a]\ncommand = "a"\nenv_vars = ["HOME_TOKEN", 3]\n'
        "[mcp_servers.b]\ncommand = 7\n",
    )
    write(tmp_path / ".claude/agents/plain.md", "No front matter here.\n")
    write(
        tmp_path / ".claude/agents/listed.md",
        "---\nname: listed\ntools: [Read, Edit]\n---\nbody\n",
    )
    report = discover(tmp_path, None, [])
    assert {s.name for s in report.servers} == {"memory", "a"}
    (codex,) = [s for s in report.servers if s.name == "a"]
    assert codex.env == ("HOME_TOKEN",)
    reasons = sorted(p.reason for p in report.problems)
    assert any("no 'transport' object" in r for r in reasons)
    assert any("'command' should be a string" in r for r in reasons)
    subagents = {a.name: a.tools for a in report.agents if a.kind == "subagent"}
    assert subagents == {"plain": (), "listed": ("Read", "Edit")}


def test_default_system_dirs_are_absolute() -> None:
    assert all(p.is_absolute() for p in default_system_dirs())


def test_empty_machine_finds_nothing(tmp_path: Path) -> None:
    report = discover(tmp_path, tmp_path, [tmp_path])
    assert report == DiscoveryReport()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": "http://x//y", /* c */ "b": [1, 2,],}', {"a": "http://x//y", "b": [1, 2]}),
        ('{"a": "quote \\" // not a comment"} // end', {"a": 'quote " // not a comment'}),
        ('{"a": ",}"}', {"a": ",}"}),
        ("// only\n{}", {}),
    ],
)
def test_parse_jsonc(text: str, expected: object) -> None:
    assert parse_jsonc(text) == expected


def test_parse_jsonc_errors_point_into_the_original_file() -> None:
    with pytest.raises(ValueError, match="line 3"):
        parse_jsonc('{\n  /* a\n comment */ "a": }')
    with pytest.raises(ValueError, match="unterminated"):
        parse_jsonc('{"a": 1 /* open')


# --- the command ------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("discover")(discover_command)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the name
    return app


def test_cli_json_output(machine: tuple[Path, Path, Path], tmp_path: Path) -> None:
    home, project, etc = machine
    inventory = write(tmp_path / "agents.yaml", "agents:\n  - id: claude-code\n")
    result = CliRunner().invoke(
        cli(),
        [
            "discover",
            "--home",
            str(home),
            "--project",
            str(project),
            "--system-dir",
            str(etc),
            "--agents",
            str(inventory),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["servers"] == 22
    assert data["summary"]["problems"] == 0
    claude = [a for a in data["agents"] if a["name"] == "claude-code"]
    assert {a["in_inventory"] for a in claude} == {True}


def test_cli_table_output_marks_shadow(machine: tuple[Path, Path, Path], tmp_path: Path) -> None:
    home, project, etc = machine
    inventory = write(tmp_path / "agents.yaml", "agents:\n  - id: cursor\n")
    write(home / ".cursor/mcp.json", "{broken")
    result = CliRunner().invoke(
        cli(),
        [
            "discover",
            "--home",
            str(home),
            "--project",
            str(project),
            "--system-dir",
            str(etc),
            "--agents",
            str(inventory),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "shadow" in result.stdout
    assert "known" in result.stdout
    assert "not in the inventory" in result.stdout
    assert "warning:" in result.output


def test_cli_bad_inventory_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli(), ["discover", "--home", str(tmp_path), "--agents", str(tmp_path / "missing.yaml")]
    )
    assert result.exit_code == 3


def test_scope_and_client_values_are_stable() -> None:
    assert [s.value for s in Scope] == ["user", "project", "system"]
    assert Client.CODEX_CLI.value == "codex-cli"
