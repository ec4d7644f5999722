"""HTTP decision throughput and latency: ``lictor serve`` against a bare ASGI reference.

One command: ``.venv/bin/python benchmarks/http.py [--seconds 5] [--json]``.

Every target runs in its own process on 127.0.0.1 and the load comes from another
process: a small asyncio HTTP/1.1 client with keep-alive connections (no third-party
load tool needed; ``wrk`` gives higher absolute numbers where installed). Each target
decides the same finance-example request with durable audit on SQLite, except
``bare-memory``, whose audit trail lives in memory (what durability costs). Results
are medians over rounds; the ratios compare targets measured in the same run.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder comes first on sys.path, and its name would
# shadow the standard library's ``http`` package that urllib and asyncio need.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    sys.path.pop(0)

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUEST = {
    "tool": "get_invoice",
    "session_id": "bench",
    "arguments": {"id": "INV-7"},
    "context": {"task": "Show me invoice INV-7"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _connection(port: int, body: bytes, token: str, until: float, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    message = head + body
    while time.perf_counter() < until:
        start = time.perf_counter()
        writer.write(message)
        status = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        if b" 200 " not in status:
            raise RuntimeError(f"unexpected response {status!r}")
        out.append(time.perf_counter() - start)
    writer.close()


def _load(port: int, token: str, connections: int, seconds: float, queue: object) -> None:
    latencies: list[float] = []
    body = json.dumps(REQUEST).encode()

    async def run() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_connection(port, body, token, until, latencies) for _ in range(connections))
        )

    asyncio.run(run())
    queue.put((len(latencies) / seconds, latencies))  # type: ignore[attr-defined]


def measure(port: int, token: str, connections: int, seconds: float) -> dict[str, float]:
    """Drive one target from a separate process; return rate and latency percentiles."""
    queue: multiprocessing.Queue[tuple[float, list[float]]] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_load, args=(port, token, connections, seconds, queue))
    proc.start()
    rate, latencies = queue.get(timeout=seconds + 60)
    proc.join()
    latencies.sort()
    return {
        "rate": rate,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("target did not start")


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lictor = str(Path(sys.executable).with_name("lictor"))
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        targets = ("lictor", "bare", "bare-memory")
        configs: dict[str, Path] = {}
        tokens: dict[str, str] = {}
        for kind in targets:
            config = data / f"{kind}.toml"
            config.write_text(
                f'data_dir = "{data / kind}"\n'
                f'policies = "{ROOT / "examples/finance/policies"}"\n'
                f'agents = "{ROOT / "examples/finance/agents.yaml"}"\n'
            )
            subprocess.run(
                [lictor, "init", "--config", str(config), "--json"], check=True, capture_output=True
            )
            created = subprocess.run(
                [
                    lictor,
                    "credentials",
                    "create",
                    "--config",
                    str(config),
                    "--agent",
                    "payments-bot",
                    "--json",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            tokens[kind] = json.loads(created.stdout)["token"]
            configs[kind] = config
        for kind in targets:
            port = _free_port()
            server = subprocess.Popen(  # the target, in its own process
                [
                    sys.executable,
                    str(Path(__file__).with_name("_http_targets.py")),
                    kind,
                    str(configs[kind]),
                    str(port),
                ],
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            )
            try:
                _wait_ready(port, time.monotonic() + 30)
                for connections in (1, 64):
                    measure(port, tokens[kind], connections, 1.0)  # warm up
                    results.setdefault(kind, {})[connections] = [
                        measure(port, tokens[kind], connections, args.seconds)
                        for _ in range(args.rounds)
                    ]
            finally:
                server.terminate()
                server.wait(30)
    table: list[dict[str, Any]] = []
    for kind, by_conn in results.items():
        for connections, runs in by_conn.items():
            table.append(
                {
                    "target": kind,
                    "connections": connections,
                    "decisions_per_s": statistics.median(r["rate"] for r in runs),
                    "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                }
            )
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"{'target':<13}{'conns':>6}{'decisions/s':>13}{'p50 ms':>9}{'p99 ms':>9}")
    for row in table:
        print(
            f"{row['target']:<13}{row['connections']:>6}{row['decisions_per_s']:>13.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
        )
    rate: dict[tuple[str, int], float] = {
        (r["target"], r["connections"]): r["decisions_per_s"] for r in table
    }
    print(
        f"\nlictor / bare (64 conns): {rate[('lictor', 64)] / rate[('bare', 64)]:.2f}x   "
        f"durable / memory audit (bare, 64): "
        f"{rate[('bare', 64)] / rate[('bare-memory', 64)]:.2f}x"
    )


if __name__ == "__main__":
    main()
