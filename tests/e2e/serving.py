"""Running the real ``lictor`` command in end-to-end tests: the CLI, and servers it starts."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def cli() -> list[str]:
    """The ``lictor`` command: ``LICTOR_TEST_CLI``, this interpreter's script, or the module."""
    override = os.environ.get("LICTOR_TEST_CLI")
    if override:
        return shlex.split(override)
    script = Path(sys.executable).with_name("lictor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from lictor.cli.main import run; run()"]


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI, arguments built by the test
        [*cli(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, *, every: float = 0.05
) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (bounded polling)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@dataclass
class Served:
    """One ``lictor serve`` process (its own process group: workers die with it)."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def serve(config: Path, log: Path, cwd: Path) -> Served:
    """Start ``lictor serve --config CONFIG``, its output going to ``log``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built by the test
            [*cli(), "serve", "--config", str(config)],
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Served(process, log)


def wait_listening(served: Served, timeout: float, name: str = "lictor serve") -> None:
    """Wait until the server logs its address (fail at once if it exited)."""

    def listening() -> bool:
        if served.process.poll() is not None:
            pytest.fail(f"{name} exited with {served.process.returncode}:\n{served.log_text()}")
        found = LISTENING.search(served.log_text())
        if found:
            served.url = found.group(1)
        return bool(found)

    wait_for(listening, timeout, f"{name} to listen")


def wait_healthy(served: Served, timeout: float) -> None:
    """Wait until ``/healthz`` answers 200."""

    def healthy() -> bool:
        try:
            return httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout, "/healthz")
