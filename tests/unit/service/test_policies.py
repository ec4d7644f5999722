"""Bundles load all-or-nothing with a content version; inventories load with positions."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lictor.core.agents import AgentStatus
from lictor.errors import ConfigError, PolicyError
from lictor.service.policies import bundle_files, load_bundle, load_inventory

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "finance"

READ = """\
rules:
  - id: read
    match: {tools: [read]}
    effect: allow
"""
WRITE = """\
settings:
  timezone: Europe/Berlin
rules:
  - id: write
    match: {tools: [write]}
    when: "arguments.size < 10"
    effect: review
"""


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "policies", {"a.yaml": READ, "sub/b.yml": WRITE})


def test_bundle_loads_every_yaml_file_in_path_order(bundle_dir: Path) -> None:
    (bundle_dir / "notes.txt").write_text("not: [yaml", encoding="utf-8")

    bundle = load_bundle(bundle_dir)

    assert [r.id for r in bundle.policy.policy.rules] == ["read", "write"]
    assert [d.source for d in bundle.documents] == [
        str(bundle_dir / "a.yaml"),
        str(bundle_dir / "sub" / "b.yml"),
    ]
    assert bundle.policy.policy.timezone == "Europe/Berlin"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", bundle.version)


def test_rules_remember_their_file_and_line(bundle_dir: Path) -> None:
    rules = load_bundle(bundle_dir).policy.policy.rules

    assert [(r.source, r.line, r.when_line) for r in rules] == [
        (str(bundle_dir / "a.yaml"), 2, None),
        (str(bundle_dir / "sub" / "b.yml"), 4, 6),
    ]


def test_bundle_without_timezone_is_utc(tmp_path: Path) -> None:
    assert load_bundle(write(tmp_path, {"a.yaml": READ})).policy.policy.timezone == "UTC"


def test_empty_directory_is_an_empty_bundle(tmp_path: Path) -> None:
    bundle = load_bundle(tmp_path)

    assert bundle.policy.rules == ()
    assert bundle.documents == ()


def test_single_file_is_a_bundle_of_one(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir / "a.yaml")

    assert [r.id for r in bundle.policy.policy.rules] == ["read"]
    assert bundle_files(bundle_dir / "a.yaml") == [bundle_dir / "a.yaml"]


def test_example_bundle_loads() -> None:
    bundle = load_bundle(EXAMPLES / "policies")

    assert len(bundle.policy.rules) == 12
    assert bundle.policy.policy.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("c.yaml", "rules: [\n", 2),
        ("c.yaml", "rules:\n  - id: c\n    effect: allow\n    wen: 'true'\n", 4),
        ("c.yaml", "rules:\n  - id: c\n    effect: allow\n    when: 'tool =='\n", 4),
        ("c.yaml", "rules:\n  - {id: c, effect: allow}\n  - {id: c, effect: deny}\n", 3),
        ("sub/deeper/c.yml", "rules:\n  - id: c\n    effect: maybe\n", 3),
        ("sub/b.yml", WRITE.replace("review", "revue"), 7),
    ],
)
def test_one_bad_file_rejects_the_whole_bundle_naming_that_file(
    bundle_dir: Path, name: str, content: str, line: int
) -> None:
    write(bundle_dir, {name: content})

    with pytest.raises(PolicyError) as caught:
        load_bundle(bundle_dir)

    assert (caught.value.source, caught.value.line) == (str(bundle_dir / name), line)


def test_duplicate_rule_id_across_files_names_the_later_file(bundle_dir: Path) -> None:
    write(bundle_dir, {"z.yaml": READ})

    with pytest.raises(PolicyError) as caught:
        load_bundle(bundle_dir)

    assert (caught.value.source, caught.value.rule_id) == (str(bundle_dir / "z.yaml"), "read")
    assert str(bundle_dir / "a.yaml") in str(caught.value)


def test_file_that_is_not_utf8_is_rejected_by_name(bundle_dir: Path) -> None:
    write(bundle_dir, {"latin.yaml": "rules: []\n# caf\xe9\n".encode("latin-1")})

    with pytest.raises(PolicyError) as caught:
        load_bundle(bundle_dir)

    assert caught.value.source == str(bundle_dir / "latin.yaml")


def test_version_is_stable_for_the_same_content(bundle_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(bundle_dir, tmp_path / "elsewhere")

    assert load_bundle(bundle_dir).version == load_bundle(bundle_dir).version
    assert load_bundle(copy).version == load_bundle(bundle_dir).version


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "a.yaml").write_text(READ + "\n", encoding="utf-8"),
        lambda root: (root / "a.yaml").write_text(READ + "# note\n", encoding="utf-8"),
        lambda root: (root / "sub" / "b.yml").write_text(WRITE.replace("10", "11"), "utf-8"),
        lambda root: (root / "a.yaml").rename(root / "a2.yaml"),
        lambda root: (root / "empty.yaml").write_text("", encoding="utf-8"),
    ],
    ids=["trailing-newline", "comment", "condition", "rename", "new-empty-file"],
)
def test_version_changes_when_any_byte_or_name_changes(
    bundle_dir: Path, change: Callable[[Path], object]
) -> None:
    before = load_bundle(bundle_dir).version
    change(bundle_dir)

    assert load_bundle(bundle_dir).version != before


def test_version_ignores_files_that_are_not_yaml(bundle_dir: Path) -> None:
    before = load_bundle(bundle_dir).version
    (bundle_dir / "README.md").write_text("# policies\n", encoding="utf-8")

    assert load_bundle(bundle_dir).version == before


def test_conflicting_timezones_reject_the_bundle_at_the_second_file(bundle_dir: Path) -> None:
    write(bundle_dir, {"sub/c.yaml": "settings:\n  timezone: UTC\n"})

    with pytest.raises(PolicyError) as caught:
        load_bundle(bundle_dir)

    assert (caught.value.source, caught.value.line) == (str(bundle_dir / "sub" / "c.yaml"), 2)


def test_same_timezone_in_two_files_is_fine(bundle_dir: Path) -> None:
    write(bundle_dir, {"sub/c.yaml": "settings: {timezone: Europe/Berlin}\n"})

    assert load_bundle(bundle_dir).policy.policy.timezone == "Europe/Berlin"


def test_unknown_timezone_rejects_the_bundle(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "settings: {timezone: Europe/Atlantis}\n"})

    with pytest.raises(PolicyError) as caught:
        load_bundle(tmp_path)

    assert caught.value.pointer == "/settings/timezone"


def test_unknown_timezone_error_names_the_file_that_set_it(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "settings: {timezone: Europe/Atlantis}\n"})

    with pytest.raises(PolicyError) as caught:
        load_bundle(tmp_path)

    assert caught.value.source == str(tmp_path / "a.yaml")


def test_missing_bundle_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_bundle(tmp_path / "no-such-dir")


# --- inventory --------------------------------------------------------------------------


def test_example_inventory_loads_every_agent() -> None:
    agents = load_inventory(EXAMPLES / "agents.yaml")

    assert [a.id for a in agents] == ["payments-bot", "expense-helper", "old-batch-job"]
    assert agents[2].status is AgentStatus.RETIRED
    assert agents[0].is_tool_allowed("payments.refund")


def test_empty_inventory_file_has_no_agents(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents.yaml": "# none yet\n"}) / "agents.yaml"

    assert load_inventory(path) == []


def test_duplicate_agent_id_is_rejected_at_the_second_record(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - id: a\n  - id: b\n  - id: a\n    name: again\n", "utf-8")

    with pytest.raises(PolicyError) as caught:
        load_inventory(path)

    assert (caught.value.source, caught.value.line) == (str(path), 4)


def test_bad_record_is_rejected_with_line_column_and_pointer(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - id: a\n  - id: b\n    risk_tier: extreme\n", encoding="utf-8")

    with pytest.raises(PolicyError) as caught:
        load_inventory(path)

    error = caught.value
    assert (error.source, error.line, error.column) == (str(path), 4, 16)
    assert error.pointer == "/agents/1/risk_tier"


@pytest.mark.parametrize(
    "text",
    ["- id: a\n", "agents: {id: a}\n", "agents: []\nowners: []\n", "just text\n"],
)
def test_inventory_that_is_not_a_mapping_with_an_agents_list_is_rejected(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(PolicyError) as caught:
        load_inventory(path)

    assert caught.value.source == str(path)


def test_missing_inventory_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_inventory(tmp_path / "agents.yaml")
