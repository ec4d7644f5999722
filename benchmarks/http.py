"""HTTP decision throughput and latency: ``lictor serve`` against a bare ASGI reference.

One command: ``.venv/bin/python benchmarks/http.py [--seconds 5] [--rounds 3] [--json]``.

Every target runs in its own process(es) on 127.0.0.1 and the load comes from another
process: ``wrk`` (Debian package ``wrk``) when it is installed, otherwise a small asyncio
HTTP/1.1 client with keep-alive connections (``--client python`` forces it). Each target
decides the same finance-example request. The targets:

* ``lictor``, ``lictor-w2``: the real ``lictor serve`` command with 1 and 2 worker
  processes, durable audit (SQLite WAL, ``synchronous=FULL``: an fsync per group
  commit). These are the headline rows.
* ``lictor-os``, ``lictor-w2-os``: the same with ``audit_sync = "os"`` (a commit survives
  the process being killed, not a power loss; docs/audit.md).
* ``lictor-memory``: ``create_app`` with the audit trail in memory: the same server
  with audit off (records are still sealed).
* ``bare``, ``bare-memory``: a raw ASGI app doing only the hot-path work (body, cached
  bearer authentication, ``Governor.decide_async``) with the durable and the in-memory
  trail: what the web layer and what durability cost.

Results are medians over rounds; ratios compare targets measured in the same run.
``--targets`` picks a subset. The machine's load average is printed: on a shared
machine, other processes take CPU from both server and client.
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
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUEST = {
    "tool": "get_invoice",
    "session_id": "bench",
    "arguments": {"id": "INV-7"},
    "context": {"task": "Show me invoice INV-7"},
}
CONNECTIONS = (1, 64)


@dataclass(frozen=True)
class Target:
    """One server to measure: how to start it and with which settings."""

    name: str
    kind: str  # "serve" (the lictor command) or a kind of _http_targets.py
    workers: int = 1
    audit_sync: str = "full"


TARGETS = (
    Target("lictor", "serve"),
    Target("lictor-w2", "serve", workers=2),
    Target("lictor-os", "serve", audit_sync="os"),
    Target("lictor-w2-os", "serve", workers=2, audit_sync="os"),
    Target("lictor-memory", "lictor-memory"),
    Target("bare", "bare"),
    Target("bare-memory", "bare-memory"),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- load generators ----------------------------------------------------------------------


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


def _load(port: int, token: str, connections: int, seconds: float, queue: Any) -> None:
    latencies: list[float] = []
    body = json.dumps(REQUEST).encode()

    async def run() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_connection(port, body, token, until, latencies) for _ in range(connections))
        )

    asyncio.run(run())
    queue.put((len(latencies) / seconds, latencies))


def _measure_python(port: int, token: str, connections: int, seconds: float) -> dict[str, float]:
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


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
  io.stderr:write(string.format("RESULT %d %d %d %d %d\\n", summary.requests,
      summary.duration, latency:percentile(50), latency:percentile(99), bad))
end
"""


def _measure_wrk(
    wrk: str, port: int, token: str, connections: int, seconds: float
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT.format(body=json.dumps(json.dumps(REQUEST)), token=token))
    try:
        done = subprocess.run(
            [
                wrk,
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}/v1/decide",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    line = next(x for x in done.stderr.splitlines() if x.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, bad = (int(x) for x in line.split()[1:])
    if bad:
        raise RuntimeError(f"{bad} failed requests: {done.stdout}")
    return {
        "rate": requests / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
    }


def measure(
    port: int, token: str, connections: int, seconds: float, wrk: str | None
) -> dict[str, float]:
    """Drive one target from a separate process; return rate and latency percentiles."""
    if wrk is not None:
        return _measure_wrk(wrk, port, token, connections, seconds)
    return _measure_python(port, token, connections, seconds)


# -- targets ------------------------------------------------------------------------------


def _wait_ready(port: int, deadline: float, process: subprocess.Popen[bytes]) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"target exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("target did not start")


def _prepare(target: Target, data: Path, port: int) -> tuple[Path, str]:
    """Write the target's config, init its data directory, create an agent token."""
    lictor = str(Path(sys.executable).with_name("lictor"))
    config = data / f"{target.name}.toml"
    config.write_text(
        f'data_dir = "{data / target.name}"\n'
        f'policies = "{ROOT / "examples/finance/policies"}"\n'
        f'agents = "{ROOT / "examples/finance/agents.yaml"}"\n'
        f'host = "127.0.0.1"\nport = {port}\nlog_level = "warning"\n'
        # Only what differs from the defaults, so older checkouts can run the defaults.
        + (f"workers = {target.workers}\n" if target.workers != 1 else "")
        + (f'audit_sync = "{target.audit_sync}"\n' if target.audit_sync != "full" else "")
    )
    env = _environment()
    subprocess.run(
        [lictor, "init", "--config", str(config), "--json"],
        check=True,
        capture_output=True,
        env=env,
    )
    create = [lictor, "credentials", "create", "--config", str(config), "--json"]
    created = subprocess.run(
        [*create, "--agent", "payments-bot"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return config, str(json.loads(created.stdout)["token"])


def _environment() -> dict[str, str]:
    """Run this checkout's code in every process, whatever is installed."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _start(target: Target, config: Path, port: int) -> subprocess.Popen[bytes]:
    env = _environment()
    if target.kind == "serve":
        command = [str(Path(sys.executable).with_name("lictor")), "serve", "--config", str(config)]
    else:
        targets = str(Path(__file__).with_name("_http_targets.py"))
        command = [sys.executable, targets, target.kind, str(config), str(port)]
    return subprocess.Popen(command, env=env, start_new_session=True)


def _cpu_seconds(group: int) -> float:
    """User + system CPU time of every process in a target's process group (its workers).

    Per decision, this is what a target costs whatever else the machine is doing: wall
    time rates move with the load, CPU time per decision much less.
    """
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[2]) == group:  # field 5, pgrp, counted after "pid (comm)"
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # workers too
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--targets", default=",".join(t.name for t in TARGETS), help="comma-separated subset"
    )
    args = parser.parse_args()
    wrk = None if args.client == "python" else shutil.which("wrk")
    if args.client == "wrk" and wrk is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    chosen = [t for t in TARGETS if t.name in args.targets.split(",")]
    load_before = os.getloadavg()[0]
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Every target runs for the whole benchmark (idle while another is measured), and
        # each round visits them in a new order: machine noise then hits all of them alike,
        # where measuring one target after the other would hand one all of a busy minute.
        servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
        try:
            for target in chosen:
                port = _free_port()
                config, token = _prepare(target, Path(tmp), port)
                servers[target.name] = (_start(target, config, port), port, token)
            for server, port, token in servers.values():
                _wait_ready(port, time.monotonic() + 90, server)
                for connections in CONNECTIONS:
                    measure(port, token, connections, 2.0, wrk)  # warm up every worker
            order = random.Random(20261125)
            for round_number in range(args.rounds):
                names = list(servers)
                order.shuffle(names)
                for name in names:
                    server, port, token = servers[name]
                    for connections in CONNECTIONS:
                        before = _cpu_seconds(server.pid)
                        result = measure(port, token, connections, args.seconds, wrk)
                        spent = _cpu_seconds(server.pid) - before
                        result["cpu_us"] = 1e6 * spent / max(1.0, result["rate"] * args.seconds)
                        results.setdefault(name, {}).setdefault(connections, []).append(result)
                print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            for server, _, _ in servers.values():
                _stop(server)
    table: list[dict[str, Any]] = []
    for name, by_conn in results.items():
        for connections, runs in by_conn.items():
            table.append(
                {
                    "target": name,
                    "connections": connections,
                    "decisions_per_s": statistics.median(r["rate"] for r in runs),
                    "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                    "cpu_us": statistics.median(r["cpu_us"] for r in runs),
                }
            )
    machine = {
        "cpus": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "client": "wrk" if wrk else "python",
    }
    if args.json:
        print(json.dumps({"machine": machine, "results": table}, indent=2))
        return
    print(
        f"{'target':<15}{'conns':>6}{'decisions/s':>13}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU us':>15}"
    )
    for row in table:
        print(
            f"{row['target']:<15}{row['connections']:>6}{row['decisions_per_s']:>13.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['cpu_us']:>15.0f}"
        )
    rate = {(r["target"], r["connections"]): r["decisions_per_s"] for r in table}

    def ratio(a: str, b: str) -> str:
        if (a, 64) in rate and (b, 64) in rate:
            return f"{rate[(a, 64)] / rate[(b, 64)]:.2f}x"
        return "n/a"

    print(
        f"\n64 conns: lictor / bare {ratio('lictor', 'bare')}, "
        f"lictor / lictor-memory {ratio('lictor', 'lictor-memory')}, "
        f"lictor-w2 / lictor {ratio('lictor-w2', 'lictor')}, "
        f"bare / bare-memory {ratio('bare', 'bare-memory')}"
    )
    print(
        f"machine: {machine['cpus']} CPUs, load average {machine['load_before']} before, "
        f"{machine['load_after']} after; load from {machine['client']}"
    )


if __name__ == "__main__":
    main()
