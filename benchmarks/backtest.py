"""Backtest throughput: replay 100,000 recorded decisions from a SQLite store.

    .venv/bin/python benchmarks/backtest.py              # 100,000 decisions
    .venv/bin/python benchmarks/backtest.py --records 20000 --json

Builds a SQLite store in a temporary directory, records decisions of the finance
example (varied amounts, payees, tasks, sessions and times, made by the real Governor
and appended to the hash-chained trail), then times ``lictor policy backtest``'s engine
reading them back in keyset pages and replaying them through a candidate bundle that
moves the review threshold. Building the trail is not timed; the target is the replay:
100,000 decisions in under a minute. CPU time and the load average are printed too: on
a shared machine the wall time also counts other processes' turns.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``lictor`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from lictor.service.governor import Governor
from lictor.service.lifecycle import backtest, decision_records
from lictor.service.memory import FixedClock, MemoryAgents
from lictor.service.policies import load_bundle, load_inventory
from lictor.store import open_store

FINANCE = Path(__file__).resolve().parent.parent / "examples" / "finance"
TARGET_SECONDS = 60.0
BATCH = 5000
PAYEES = ["DE89370400440532013000", "GB29NWBK60161331926819", "XX00UNKNOWN0000000000"]
TOOLS = ["get_invoice", "list_invoices", "get_balance", "send_money", "send_money"]


def requests(count: int, seed: int) -> list[dict[str, Any]]:
    """Seeded finance requests: reads and transfers of varied size, payee and session."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        agent = "payments-bot" if rng.random() < 0.85 else "expense-helper"
        tool = rng.choice(TOOLS)
        request: dict[str, Any] = {"agent_id": agent, "tool": tool, "session_id": f"s{i // 20}"}
        if tool == "send_money":
            amount = int(10 ** rng.uniform(1, 5.2))
            request["arguments"] = {"amount": amount, "to_account": rng.choice(PAYEES)}
            request["context"] = {"task": f"pay invoice INV-{i} of {amount} EUR"}
        else:
            request["arguments"] = {"id": f"INV-{i}"}
        out.append(request)
    return out


def office_start() -> datetime:
    """06:30 UTC on a recent weekday: inside the finance policy's Berlin office hours."""
    day = datetime.now(UTC).replace(hour=6, minute=30, second=0, microsecond=0)
    day -= timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def build_trail(url: str, count: int, seed: int) -> float:
    """Record ``count`` decisions in the store; return the seconds it took."""
    began = time.perf_counter()
    bundle = load_bundle(FINANCE / "policies")
    clock = FixedClock(office_start())
    governor = Governor(
        bundle.policy, MemoryAgents(load_inventory(FINANCE / "agents.yaml")), clock=clock
    )
    store = open_store(url)
    store.migrate()
    try:
        pending: list[dict[str, Any]] = []
        for request in requests(count, seed):
            _, _, entry = governor.prepare(request)
            pending.append(entry)
            clock.advance(0.25)  # 100,000 decisions span seven office hours
            if len(pending) >= BATCH:
                store.audit.append_batch(pending)
                pending = []
        if pending:
            store.audit.append_batch(pending)
    finally:
        store.close()
    return time.perf_counter() - began


def run(count: int, seed: int) -> dict[str, Any]:
    """Build a trail of ``count`` decisions and time one backtest over it."""
    workdir = Path(tempfile.mkdtemp(prefix="lictor-backtest-"))
    try:
        url = f"sqlite:///{workdir / 'lictor.db'}"
        build_seconds = build_trail(url, count, seed)
        candidate = workdir / "candidate"
        shutil.copytree(FINANCE / "policies", candidate)
        payments = candidate / "payments.yaml"
        payments.write_text(payments.read_text().replace('> 10000"', '> 5000"'))
        store = open_store(url)
        try:
            began = time.perf_counter()
            began_cpu = time.process_time()
            policy = load_bundle(candidate).policy
            agents: dict[str, Any] = {a.id: a for a in load_inventory(FINANCE / "agents.yaml")}
            since = datetime.now(UTC) - timedelta(days=30)
            report = backtest(policy, decision_records(store.audit, since=since), agents)
            seconds = time.perf_counter() - began
            cpu_seconds = time.process_time() - began_cpu
        finally:
            store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "records": count,
        "build_seconds": round(build_seconds, 2),
        "backtest_seconds": round(seconds, 2),
        "backtest_cpu_seconds": round(cpu_seconds, 2),
        "load_average": round(os.getloadavg()[0], 1),
        "decisions_per_second": round(report.replayed / seconds) if seconds else None,
        "replayed": report.replayed,
        "flipped": report.flipped,
        "by_direction": dict(report.by_direction),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS,
    }


def main() -> int:
    """Run the benchmark and print the result; exit 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.records, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['replayed']:,} decisions replayed in {result['backtest_seconds']} s "
            f"(CPU {result['backtest_cpu_seconds']} s, load average {result['load_average']}) "
            f"({result['decisions_per_second']:,}/s; trail built in {result['build_seconds']} s); "
            f"{result['flipped']:,} would flip {result['by_direction']}; target < "
            f"{TARGET_SECONDS:.0f} s: {'met' if result['meets_target'] else 'MISSED'}"
        )
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
