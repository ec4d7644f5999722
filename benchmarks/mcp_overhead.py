"""What the MCP gateway adds to a ``tools/call``: gateway versus direct, in one run.

The upstream is ``mcp-server-time`` over stdio (a real MCP server). Up to four clients
call ``get_current_time`` in turns, interleaved so that machine noise hits all alike:

- direct: an MCP client straight to the upstream;
- gateway, in-process decision: an MCP client to a Gateway (decisions by an embedded
  Governor) in front of its own connection to the same upstream;
- gateway process over stdio: ``lictor mcp-proxy serve`` as a client starts it (its own
  process, the same configuration), so the client talks to it over a pipe;
- gateway, remote decision: the in-process gateway deciding and reporting through
  ``lictor serve`` (a separate process on loopback, SQLite store, durable
  group-committed audit).

"added" is reported two ways: the difference of the percentiles of the end-to-end
latencies, and the percentiles of the per-call gateway time (the gateway's time for a
call minus its upstream round trip, measured inside the gateway), which does not
depend on the upstream's own jitter. Targets (in-process): p50 < 1 ms, p99 < 3 ms.

    python benchmarks/mcp_overhead.py [--calls 500] [--no-remote] [--no-stdio]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Python puts this script's directory first on sys.path, where a sibling module named
# like a standard one (benchmarks/http.py) would shadow it for every import below.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
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
    return parse_config(raw_config(root, mode))


def raw_config(root: Path, mode: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {"manifest": str(root / "pins.json")},
        "identity": {"agent_id": "bench-agent"},
        "lictor": mode,
        "upstreams": [{"name": "time", "command": time_server()}],
    }


def write_toml(path: Path, config: dict[str, Any]) -> None:
    """The configuration as a ``lictor mcp-proxy`` TOML file (flat tables and strings)."""
    lines: list[str] = []
    for table in ("gateway", "identity", "lictor"):
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml(value)}" for key, value in config[table].items()]
    for upstream in config["upstreams"]:
        lines.append("[[upstreams]]")
        lines += [f"{key} = {_toml(value)}" for key, value in upstream.items()]
    path.write_text("\n".join(lines) + "\n")


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def process_cpu_seconds(marker: str) -> float | None:
    """CPU time used so far by the process whose command line contains ``marker`` (Linux)."""
    for entry in glob.glob("/proc/[0-9]*"):
        try:
            with open(f"{entry}/cmdline", "rb") as cmdline:
                if marker.encode() not in cmdline.read():
                    continue
            with open(f"{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


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
) -> AsyncIterator[tuple[Client, TimedLink, Gateway]]:
    from lictor.mcp_proxy.proxy import default_opener

    upstream = config.upstreams[0]
    link = TimedLink(upstream, default_opener(upstream), connect_timeout=60)
    gateway = Gateway(config, source, links={"time": link})
    async with gateway.running(), Client(gateway.server()) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "time.get_current_time" in names, names
        yield client, link, gateway


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


Probe = tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[None]] | None]
"""A call (returning its upstream round trip in ns, or -1) and what to wait for after it."""


async def measure(
    calls: int, paths: dict[str, Probe], warmup: int = 50
) -> tuple[Samples, Samples, Samples]:
    """Call every path in turns; return end-to-end, gateway-only and CPU times in ms.

    CPU time is this process's (client, gateway and its worker threads; not the
    upstream's or the Lictor server's): on a shared, loaded machine it moves much less
    than wall-clock time, so it is the steadier estimate of what the gateway costs.
    After each call the gateway's result report (sent after the answer) is waited for
    outside the timed span but inside the CPU span, so its cost counts for its own
    path and not for the next one.
    """
    total: Samples = {name: [] for name in paths}
    inside: Samples = {name: [] for name in paths}
    cpu: Samples = {name: [] for name in paths}
    for i in range(warmup + calls):
        for name, (call, after) in paths.items():
            cpu_started = time.process_time_ns()
            started = time.perf_counter_ns()
            upstream_ns = await call()
            elapsed = time.perf_counter_ns() - started
            if after is not None:
                await after()
            cpu_used = time.process_time_ns() - cpu_started
            if i >= warmup:
                total[name].append(elapsed / 1e6)
                cpu[name].append(cpu_used / 1e6)
                if upstream_ns >= 0:
                    inside[name].append((elapsed - upstream_ns) / 1e6)
    return total, inside, cpu


STDIO = "gateway process, stdio (mcp-proxy)"


async def run(calls: int, remote: bool, stdio: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="lictor-bench-"))
    (root / "policies").mkdir()
    (root / "policies" / "bench.yaml").write_text(POLICY)
    (root / "agents.yaml").write_text(AGENTS)
    mode = {"policies": str(root / "policies"), "agents": str(root / "agents.yaml")}
    in_process = config_for(root, mode)
    gateway_toml = root / "gateway.toml"
    write_toml(gateway_toml, raw_config(root, mode))
    lictor = shutil.which("lictor", path=str(Path(sys.executable).parent))
    if stdio and lictor is None:
        sys.exit("the lictor command is not installed next to this Python: pip install -e .")
    gateway_cpu: float | None = None

    async with AsyncExitStack() as stack:
        direct = await stack.enter_async_context(
            Client(StdioServerParameters(command=time_server()))
        )
        source = await stack.enter_async_context(open_source(in_process))
        assert isinstance(source, InProcessSource)
        governed, link, gateway = await stack.enter_async_context(
            gateway_client(in_process, source)
        )

        async def call_direct() -> int:
            result = await direct.call_tool("get_current_time", ARGUMENTS)
            assert not result.is_error
            return 0

        async def call_gateway() -> int:
            result = await governed.call_tool("time.get_current_time", ARGUMENTS)
            assert not result.is_error, result
            return link.last_ns

        paths: dict[str, Probe] = {
            "direct": (call_direct, None),
            "gateway, in-process decision": (call_gateway, partial(gateway.settle, every=True)),
        }
        if stdio:
            # The process inherits PYTHONPATH, so it runs the same code as this one.
            args = ["mcp-proxy", "serve", "--config", str(gateway_toml)]
            assert lictor is not None
            server = StdioServerParameters(command=lictor, args=args, env=dict(os.environ))
            process = await stack.enter_async_context(Client(server))
            await process.list_tools()

            async def call_process() -> int:
                result = await process.call_tool("time.get_current_time", ARGUMENTS)
                assert not result.is_error, result
                return -1  # the gateway's own time is not visible from here

            paths[STDIO] = (call_process, None)
        if remote:
            url, token = (await stack.enter_async_context(remote_server(root))).split("|")
            remote_config = config_for(root, {"mode": "remote", "url": url, "token": token})
            client = AsyncLictorClient(url, token)
            stack.push_async_callback(client.aclose)
            remote_source = RemoteSource(client, remote_config.identity)
            remote_gw, remote_link, remote_gateway = await stack.enter_async_context(
                gateway_client(remote_config, remote_source)
            )

            async def call_remote() -> int:
                result = await remote_gw.call_tool("time.get_current_time", ARGUMENTS)
                assert not result.is_error, result
                return remote_link.last_ns

            settle = partial(remote_gateway.settle, every=True)
            paths["gateway, remote decision (lictor serve)"] = (call_remote, settle)
        started = process_cpu_seconds(str(gateway_toml)) if stdio else None
        total, inside, cpu = await measure(calls, paths)
        ended = process_cpu_seconds(str(gateway_toml)) if stdio else None
        if started is not None and ended is not None:
            gateway_cpu = (ended - started) * 1000 / (calls + 50)

    report(calls, total, inside, cpu, gateway_cpu)
    shutil.rmtree(root, ignore_errors=True)


def report(
    calls: int, total: Samples, inside: Samples, cpu: Samples, gateway_cpu: float | None
) -> None:
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
    blank = ""
    for name, samples in total.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        mid_cpu = statistics.median(cpu[name])
        if name == "direct":
            print(
                f"{name:40} {p50:7.3f} {p99:7.3f} | {blank:>9} {blank:>9} | "
                f"{blank:>7} {blank:>7} | {mid_cpu:7.3f} {blank:>7}"
            )
            continue
        added = f"{p50 - percentile(base, 50):9.3f} {p99 - percentile(base, 99):9.3f}"
        g = inside[name]
        own = f"{percentile(g, 50):7.3f} {percentile(g, 99):7.3f}" if g else f"{blank:>15}"
        if name == STDIO:  # this process is only the client; the gateway is another one
            spent = f"{blank:>7} {blank:>7}"
        else:
            spent = f"{mid_cpu:7.3f} {mid_cpu - base_cpu:7.3f}"
        print(f"{name:40} {p50:7.3f} {p99:7.3f} | {added} | {own} | {spent}")
    print(
        "\nadded: gateway percentile minus direct percentile. gw: per-call time in the gateway "
        "(end to end minus its upstream round trip). cpu: median CPU time of this process per "
        "call; +cpu: the gateway's share. Targets in-process: added p50 < 1, p99 < 3."
    )
    if gateway_cpu is not None:
        print(f"{STDIO}: {gateway_cpu:.3f} ms CPU per call in the gateway's process (mean).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--no-remote", action="store_true", help="skip the lictor serve path")
    parser.add_argument(
        "--no-stdio", action="store_true", help="skip the lictor mcp-proxy process path"
    )
    args = parser.parse_args()
    anyio.run(run, args.calls, not args.no_remote, not args.no_stdio)


if __name__ == "__main__":
    main()
