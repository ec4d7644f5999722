"""What the MCP gateway adds to a ``tools/call``: gateway versus direct, in one run.

The upstream is ``mcp-server-time`` over stdio (a real MCP server). Three clients call
``get_current_time`` in turns, interleaved so that machine noise hits all alike:

- direct: an MCP client straight to the upstream;
- gateway, in-process decision: an MCP client to a Gateway (decisions by an embedded
  Governor) in front of its own connection to the same upstream;
- gateway, remote decision: the same, deciding and reporting through ``lictor serve``
  (a separate process on loopback, SQLite store, durable group-committed audit).

"added" is reported two ways: the difference of the percentiles of the end-to-end
latencies, and the percentiles of the per-call gateway time (the gateway's time for a
call minus its upstream round trip, measured inside the gateway), which does not
depend on the upstream's own jitter. Targets (in-process): p50 < 1 ms, p99 < 3 ms.

    python benchmarks/mcp_overhead.py [--calls 500] [--no-remote]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Python puts this script's directory first on sys.path, where a sibling module named
# like a standard one (benchmarks/http.py) would shadow it for every import below.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from lictor.mcp_proxy.config import ProxyConfig, parse_config
from lictor.mcp_proxy.proxy import (
    Gateway,
    InProcessSource,
    RemoteSource,
    UpstreamLink,
    open_source,
)
from lictor.sdk import AsyncLictorClient

POLICY = """
rules:
  - id: bench/clock
    match: {tools: [time.get_current_time]}
    effect: allow
    message: Reading the clock is harmless
"""
AGENTS = """
agents:
  - id: bench-agent
    owner: bench@lictor.example
    allowed_tools: ["time.*"]
"""
SERVER = """
import socket, sys
import uvicorn
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.settings import Settings

settings = Settings(data_dir=sys.argv[1], policies=sys.argv[2], agents=sys.argv[3])
runtime = Runtime.open(settings)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)
try:
    uvicorn.Server(uvicorn.Config(create_app(runtime), log_level="warning")).run(sockets=[sock])
finally:
    runtime.close()
"""
ARGUMENTS = {"timezone": "Europe/Amsterdam"}


def time_server() -> str:
    found = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit("mcp-server-time is not installed: pip install -e '.[dev]'")
    return found


def config_for(root: Path, mode: dict[str, Any]) -> ProxyConfig:
    return parse_config(
        {
            "gateway": {"manifest": str(root / "pins.json")},
            "identity": {"agent_id": "bench-agent"},
            "lictor": mode,
            "upstreams": [{"name": "time", "command": time_server()}],
        }
    )


class TimedLink(UpstreamLink):
    """An upstream link that records each upstream round trip (to subtract it)."""

    last_ns = 0

    async def call_tool(self, name: str, arguments: Any, timeout: float) -> Any:
        started = time.perf_counter_ns()
        try:
            return await super().call_tool(name, arguments, timeout)
        finally:
            self.last_ns = time.perf_counter_ns() - started


@asynccontextmanager
async def gateway_client(
    config: ProxyConfig, source: Any
) -> AsyncIterator[tuple[Client, TimedLink]]:
    from lictor.mcp_proxy.proxy import default_opener

    upstream = config.upstreams[0]
    link = TimedLink(upstream, default_opener(upstream), connect_timeout=60)
    gateway = Gateway(config, source, links={"time": link})
    async with gateway.running(), Client(gateway.server()) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "time.get_current_time" in names, names
        yield client, link


@asynccontextmanager
async def remote_server(root: Path) -> AsyncIterator[str]:
    """Start ``lictor serve`` (the app under uvicorn) in its own process; yield an agent token."""
    from lictor.server.runtime import Runtime
    from lictor.service.ports import CredentialKind, Role
    from lictor.settings import Settings

    data = root / "server"
    settings = Settings(data_dir=data, policies=root / "policies", agents=root / "agents.yaml")
    runtime = Runtime.open(settings)
    token = runtime.credentials.issue(CredentialKind.AGENT, "bench-agent", Role.AGENT).token
    runtime.close()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            str(data),
            str(root / "policies"),
            str(root / "agents.yaml"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}|{token}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


Samples = dict[str, list[float]]


async def measure(
    calls: int, paths: dict[str, Callable[[], Awaitable[int]]], warmup: int = 50
) -> tuple[Samples, Samples, Samples]:
    """Call every path in turns; return end-to-end, gateway-only and CPU times in ms.

    CPU time is this process's (client, gateway and its worker threads; not the
    upstream's or the Lictor server's): on a shared, loaded machine it moves much less
    than wall-clock time, so it is the steadier estimate of what the gateway costs.
    """
    total: Samples = {name: [] for name in paths}
    inside: Samples = {name: [] for name in paths}
    cpu: Samples = {name: [] for name in paths}
    for i in range(warmup + calls):
        for name, call in paths.items():
            cpu_started = time.process_time_ns()
            started = time.perf_counter_ns()
            upstream_ns = await call()
            elapsed = time.perf_counter_ns() - started
            cpu_used = time.process_time_ns() - cpu_started
            if i >= warmup:
                total[name].append(elapsed / 1e6)
                inside[name].append((elapsed - upstream_ns) / 1e6)
                cpu[name].append(cpu_used / 1e6)
    return total, inside, cpu


async def run(calls: int, remote: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="lictor-bench-"))
    (root / "policies").mkdir()
    (root / "policies" / "bench.yaml").write_text(POLICY)
    (root / "agents.yaml").write_text(AGENTS)
    in_process = config_for(
        root, {"policies": str(root / "policies"), "agents": str(root / "agents.yaml")}
    )
    params = StdioServerParameters(command=time_server())

    async with (
        Client(params) as direct,
        open_source(in_process) as source,
        gateway_client(in_process, source) as (governed, link),
    ):
        assert isinstance(source, InProcessSource)

        async def call_direct() -> int:
            result = await direct.call_tool("get_current_time", ARGUMENTS)
            assert not result.is_error
            return 0

        async def call_gateway() -> int:
            result = await governed.call_tool("time.get_current_time", ARGUMENTS)
            assert not result.is_error, result
            return link.last_ns

        paths: dict[str, Callable[[], Awaitable[int]]] = {
            "direct": call_direct,
            "gateway, in-process decision": call_gateway,
        }
        if remote:
            async with remote_server(root) as target:
                url, token = target.split("|")
                remote_config = config_for(root, {"mode": "remote", "url": url, "token": token})
                client = AsyncLictorClient(url, token)
                remote_source = RemoteSource(client, remote_config.identity)
                async with gateway_client(remote_config, remote_source) as (remote_gw, remote_link):

                    async def call_remote() -> int:
                        result = await remote_gw.call_tool("time.get_current_time", ARGUMENTS)
                        assert not result.is_error, result
                        return remote_link.last_ns

                    paths["gateway, remote decision (lictor serve)"] = call_remote
                    total, inside, cpu = await measure(calls, paths)
                await client.aclose()
        else:
            total, inside, cpu = await measure(calls, paths)

    report(calls, total, inside, cpu)
    shutil.rmtree(root, ignore_errors=True)


def report(calls: int, total: Samples, inside: Samples, cpu: Samples) -> None:
    base = total["direct"]
    base_cpu = statistics.median(cpu["direct"])
    print(f"\ntools/call get_current_time via mcp-server-time (stdio), {calls} calls each, ms")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"Python {sys.version.split()[0]}"
    )
    header = (
        f"{'path':40} {'p50':>7} {'p99':>7} | {'added p50':>9} {'added p99':>9} | "
        f"{'gw p50':>7} {'gw p99':>7} | {'cpu p50':>7} {'+cpu':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, samples in total.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        mid_cpu = statistics.median(cpu[name])
        if name == "direct":
            blank = ""
            print(
                f"{name:40} {p50:7.3f} {p99:7.3f} | {blank:>9} {blank:>9} | "
                f"{blank:>7} {blank:>7} | {mid_cpu:7.3f} {blank:>7}"
            )
            continue
        added50 = p50 - percentile(base, 50)
        added99 = p99 - percentile(base, 99)
        g = inside[name]
        print(
            f"{name:40} {p50:7.3f} {p99:7.3f} | {added50:9.3f} {added99:9.3f} | "
            f"{percentile(g, 50):7.3f} {percentile(g, 99):7.3f} | {mid_cpu:7.3f} "
            f"{mid_cpu - base_cpu:7.3f}"
        )
    print(
        "\nadded: gateway percentile minus direct percentile. gw: per-call time in the gateway "
        "(end to end minus its upstream round trip). cpu: median CPU time of this process per "
        "call; +cpu: the gateway's share. Targets in-process: added p50 < 1, p99 < 3."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--no-remote", action="store_true", help="skip the lictor serve path")
    args = parser.parse_args()
    anyio.run(run, args.calls, not args.no_remote)


if __name__ == "__main__":
    main()
