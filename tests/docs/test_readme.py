"""The README's code is tested: the quickstart runs, and the two commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_holds_a_large_transfer_for_review() -> None:
    result = subprocess.run(
        [sys.executable, "docs_src/quickstart.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    # Outside business hours (Berlin) a second rule joins the review; the large transfer
    # is held either way.
    assert result.stdout.startswith("review ['finance/large-transfer'")
    assert "not allowed" in result.stderr


def test_readme_embeds_the_quickstart_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    source = (ROOT / "docs_src" / "quickstart.py").read_text(encoding="utf-8")
    body = source.split('"""', 2)[2].strip()
    assert body in readme


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2
    assert "lictor demo" in blocks[0]
    test_command = blocks[1].strip()
    assert test_command == "bash scripts/test"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test" in ci
