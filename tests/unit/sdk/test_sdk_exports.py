"""``lictor.sdk.__all__`` is exactly its public surface (httpx's test_exported_members)."""

from __future__ import annotations

import types

import lictor.sdk


def test_all_lists_every_public_member_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(lictor.sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(lictor.sdk.__all__)


def test_importing_the_sdk_imports_no_framework_and_no_mcp() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lictor.sdk; "
        "print(sorted(m for m in ('langchain_core', 'agents', 'mcp') if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
