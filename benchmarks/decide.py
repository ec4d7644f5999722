"""Decision latency of Lictor against Cedar, Rego and a plain evaluator, and with risk on.

    .venv/bin/python benchmarks/decide.py            # 200 and 2,000 rules, 10,000 requests
    .venv/bin/python benchmarks/decide.py --quick    # a smaller, faster run
    .venv/bin/python benchmarks/decide.py --json     # the results as JSON on stdout

For each scale it generates the same seeded workload for every engine, loads each
engine (parse + compile, timed), replays every request through every engine and
counts disagreements with the plain evaluator (the oracle), then times decisions in
rounds. Each round visits every (scale, engine) cell in a shuffled order with a fresh
slice of requests, so a noisy minute on a shared machine hurts every engine alike;
reported figures are medians over rounds, and ratios and what risk adds to the
policy-only decision are taken within a round. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``lictor`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._engines import ENGINES as _POLICY_ENGINES
from benchmarks._engines import Engine, Loaded
from benchmarks._risk import GOVERNOR_ENGINE, RISK_ENGINE
from benchmarks._workload import Verdict, Workload, generate, oracle
from lictor.core.decisions import Outcome
from lictor.core.policy.native import compile_native

TARGET_P99_US = 35.0
TARGET_SCALING = 1.3
TARGET_CEDAR_RATIO = 3.0
TARGET_LOAD_S = 1.0
TARGET_RISK_ADDED_P99_US = 20.0
# governor: the Governor's policy-only decision (Facts, evaluate, Decision); lictor+risk:
# the same decision with the risk engine on. The risk target is their difference.
ENGINES = (*_POLICY_ENGINES, GOVERNOR_ENGINE, RISK_ENGINE)


@dataclass
class Cell:
    """Measurements for one engine at one scale."""

    engine: str
    rules: int
    load_s: float = 0.0
    mismatches: int = 0
    checked: int = 0
    p50_us: list[float] = field(default_factory=list)
    p99_us: list[float] = field(default_factory=list)
    per_s: list[float] = field(default_factory=list)
    preempted: list[float] = field(default_factory=list)
    collections: int = 0

    def summary(self) -> dict[str, Any]:
        """Medians over rounds, and the spread of the per-round values."""
        return {
            "engine": self.engine,
            "rules": self.rules,
            "p50_us": _median(self.p50_us),
            "p99_us": _median(self.p99_us),
            "decisions_per_s": _median(self.per_s),
            "p50_us_rounds": [round(v, 2) for v in self.p50_us],
            "p99_us_rounds": [round(v, 2) for v in self.p99_us],
            "preempted_per_1000": _median(self.preempted),
            "gc_collections": self.collections,
            "load_s": self.load_s,
            "mismatches": self.mismatches,
            "checked": self.checked,
        }


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1000


def _load(engine: Engine, workload: Workload, repeats: int) -> tuple[Loaded, float]:
    """Load ``repeats`` times from the engine's source; return one and the median time."""
    source = engine.write(workload)
    times = []
    loaded = None
    for _ in range(repeats):
        compile_native.cache_clear()  # every load compiles from scratch
        gc.collect()
        start = time.perf_counter()
        loaded = engine.load(workload, source)
        times.append(time.perf_counter() - start)
    assert loaded is not None
    return loaded, statistics.median(times)


def _check(
    cell: Cell, loaded: Loaded, workload: Workload, expected: Sequence[Verdict], say: Any
) -> None:
    """Replay every request; count outcomes (and, if reported, rule ids) unlike the oracle."""
    for (request, facts), want in zip(workload.requests, expected, strict=True):
        got: Verdict | Outcome
        if loaded.explain is not None:
            got = loaded.explain(request, facts)
            wrong = got != want
        else:
            got = loaded.decide(request, facts)
            wrong = got is not want.outcome
        if wrong:
            cell.mismatches += 1
            if cell.mismatches <= 3:
                say(
                    f"  MISMATCH {cell.engine}@{cell.rules}: {request.agent_id} {request.tool} "
                    f"{dict(request.arguments)} expected {want} got {got}"
                )
        cell.checked += 1


def _time(cell: Cell, loaded: Loaded, requests: Sequence[Any]) -> None:
    decide = loaded.decide
    clock = time.perf_counter_ns
    samples = []
    collections = _collections()
    switches = _preemptions()
    start = clock()
    for request, facts in requests:
        t0 = clock()
        decide(request, facts)
        samples.append(clock() - t0)
    elapsed = clock() - start
    # Outside the timed loop: how often the OS took the CPU away during the block, and
    # whether the garbage collector ran (each explains a slow sample the code did not make).
    cell.preempted.append((_preemptions() - switches) * 1000 / len(samples))
    cell.collections += _collections() - collections
    samples.sort()
    cell.p50_us.append(_percentile(samples, 0.50))
    cell.p99_us.append(_percentile(samples, 0.99))
    cell.per_s.append(len(samples) / (elapsed / 1e9))


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


def _preemptions() -> int:
    """Involuntary context switches of this thread so far (Linux; 0 where unknown)."""
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    return resource.getrusage(who).ru_nivcsw


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    """Load, check and time every engine at every scale."""
    engines = [e for e in ENGINES if e.name in args.engines]
    scales = args.scales
    cells: dict[tuple[str, int], Cell] = {}
    loaded: dict[tuple[str, int], Loaded] = {}
    workloads: dict[int, Workload] = {}
    load_before = os.getloadavg()
    for rules in scales:
        say(f"scale {rules}: generating {args.requests} requests …")
        workload = generate(rules, args.requests, seed=args.seed)
        workloads[rules] = workload
        say("  the plain evaluator decides every request once (the oracle) …")
        expected = [oracle(workload, request, facts) for request, facts in workload.requests]
        for engine in engines:
            cell = Cell(engine.name, rules)
            repeats = args.load_repeats if engine.name == "lictor" else 1
            loaded[(engine.name, rules)], cell.load_s = _load(engine, workload, repeats)
            say(f"  {engine.name:7s} loaded in {cell.load_s:.3f} s; checking against the oracle")
            _check(cell, loaded[(engine.name, rules)], workload, expected, say)
            cells[(engine.name, rules)] = cell

    # No gc.freeze() or gc.collect() here: a service does neither after loading a policy,
    # and a decision leaves no lasting objects behind, so the collector does not run
    # during decisions (each cell reports the collections it saw while timed).
    rng = random.Random(args.seed)
    order = list(cells)
    ratios: dict[str, list[float]] = {"scaling": []}
    added: dict[str, list[float]] = {}
    for rules in scales:
        ratios[f"cedar_over_lictor_{rules}"] = []
        ratios[f"rego_over_lictor_{rules}"] = []
    for round_no in range(args.rounds):
        rng.shuffle(order)
        say(f"round {round_no + 1}/{args.rounds}")
        for key in order:
            name, rules = key
            requests = workloads[rules].requests
            size = args.oracle_block if name == "plain" else args.block
            begin = (round_no * size) % len(requests)
            block = (list(requests) * 2)[begin : begin + size]
            _time(cells[key], loaded[key], block)
        if ("lictor", scales[0]) in cells and ("lictor", scales[-1]) in cells:
            small = cells[("lictor", scales[0])].p50_us[-1]
            ratios["scaling"].append(cells[("lictor", scales[-1])].p50_us[-1] / small)
        for rules in scales:
            if ("lictor", rules) not in cells:
                continue
            mine = cells[("lictor", rules)].p50_us[-1]
            for other in ("cedar", "rego"):
                if (other, rules) in cells:
                    ratio = cells[(other, rules)].p50_us[-1] / mine
                    ratios[f"{other}_over_lictor_{rules}"].append(ratio)
        _risk_added(cells, scales, added)
    return {
        "settings": {
            "requests": args.requests,
            "rounds": args.rounds,
            "block": args.block,
            "oracle_block": args.oracle_block,
            "seed": args.seed,
            "scales": scales,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cedarpy": importlib.metadata.version("cedarpy"),
            "regorus": importlib.metadata.version("gordon-to-regorus"),
        },
        "cells": [cell.summary() for cell in cells.values()],
        "ratios": {k: _median(v) for k, v in ratios.items() if v},
        "ratio_rounds": {k: [round(x, 2) for x in v] for k, v in ratios.items() if v},
        "risk_added_us": {k: _median(v) for k, v in added.items() if v},
        "risk_added_us_rounds": {k: [round(x, 2) for x in v] for k, v in added.items() if v},
        "workload": {
            str(rules): {
                "agents": len(w.agents),
                "rules": len(w.rules),
                "distinct_conditions": len({r.when.cel() for r in w.rules if r.when}),
            }
            for rules, w in workloads.items()
        },
    }


def _risk_added(
    cells: dict[tuple[str, int], Cell], scales: Sequence[int], added: dict[str, list[float]]
) -> None:
    """What risk added in the round just timed: lictor+risk minus each reference, in us.

    Within the round, as the ratios are, so that a noisy minute shifts both alike. The
    reference of the target is "governor" (the policy-only decision the Governor makes);
    "lictor" (``evaluate`` alone) is reported too.
    """
    for rules in scales:
        risk = cells.get(("lictor+risk", rules))
        if risk is None:
            continue
        for reference in ("governor", "lictor"):
            base = cells.get((reference, rules))
            if base is None:
                continue
            for stat in ("p50", "p99"):
                mine: list[float] = getattr(risk, f"{stat}_us")
                theirs: list[float] = getattr(base, f"{stat}_us")
                added.setdefault(f"{stat}_over_{reference}_{rules}", []).append(
                    mine[-1] - theirs[-1]
                )


def targets(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """The acceptance targets: (what, met, the measured value)."""
    cells = {(c["engine"], c["rules"]): c for c in result["cells"]}
    scales = result["settings"]["scales"]
    out: list[tuple[str, bool, str]] = []
    big = scales[-1]
    lictor_big = cells.get(("lictor", big))
    if lictor_big:
        p99 = lictor_big["p99_us"]
        out.append(
            (
                f"Lictor p99 <= {TARGET_P99_US:g} us at {big} rules",
                p99 <= TARGET_P99_US,
                f"{p99:.1f} us",
            )
        )
        load = lictor_big["load_s"]
        out.append(
            (
                f"Lictor load of {big} rules < {TARGET_LOAD_S:g} s",
                load < TARGET_LOAD_S,
                f"{load:.3f} s",
            )
        )
    scaling = result["ratios"].get("scaling")
    if scaling is not None:
        out.append(
            (
                f"Lictor p50 at {big} <= {TARGET_SCALING}x p50 at {scales[0]}",
                scaling <= TARGET_SCALING,
                f"{scaling:.2f}x",
            )
        )
    for rules in scales:
        ratio = result["ratios"].get(f"cedar_over_lictor_{rules}")
        if ratio is not None:
            out.append(
                (
                    f"Lictor >= {TARGET_CEDAR_RATIO:g}x faster than Cedar at p50, {rules} rules",
                    ratio >= TARGET_CEDAR_RATIO,
                    f"{ratio:.2f}x",
                )
            )
    for rules in scales:
        added = result.get("risk_added_us", {}).get(f"p99_over_governor_{rules}")
        if added is not None:
            out.append(
                (
                    f"Risk adds <= {TARGET_RISK_ADDED_P99_US:g} us p99 to the policy-only "
                    f"decision, {rules} rules",
                    added <= TARGET_RISK_ADDED_P99_US,
                    f"{added:+.1f} us",
                )
            )
    bad = {
        f"{c['engine']}@{c['rules']}": c["mismatches"] for c in result["cells"] if c["mismatches"]
    }
    out.append(("Zero mismatches against the plain evaluator", not bad, str(bad or "0")))
    return out


def render(result: dict[str, Any]) -> str:
    """The human-readable table and target checks."""
    lines = [
        f"{'engine':11s} {'rules':>6s} {'p50 us':>9s} {'p99 us':>9s} {'decisions/s':>12s} "
        f"{'load s':>8s} {'mismatches':>11s} {'preempt/1k':>10s}",
    ]
    lines.extend(
        f"{c['engine']:11s} {c['rules']:>6d} {c['p50_us']:>9.1f} {c['p99_us']:>9.1f} "
        f"{c['decisions_per_s']:>12,.0f} {c['load_s']:>8.3f} "
        f"{c['mismatches']:>5d}/{c['checked']} {c['preempted_per_1000']:>10.1f}"
        for c in result["cells"]
    )
    lines.append("")
    for name, value in sorted(result["ratios"].items()):
        lines.append(f"ratio {name}: {value:.2f}x (median of per-round ratios)")
    for name, value in sorted(result.get("risk_added_us", {}).items()):
        lines.append(f"risk added {name}: {value:+.1f} us (median of per-round differences)")
    m = result["machine"]
    lines.append(
        f"machine: {m['cpus']} CPUs, load average {m['loadavg_before'][0]} before, "
        f"{m['loadavg_after'][0]} after; Python {m['python']}, cedarpy {m['cedarpy']}, "
        f"regorus (gordon-to-regorus) {m['regorus']}"
    )
    collected = ", ".join(
        f"{c['engine']}@{c['rules']} {c['gc_collections']}" for c in result["cells"]
    )
    lines.append(f"garbage collections while timed: {collected}")
    lines.append("")
    for what, met, value in targets(result):
        lines.append(f"{'PASS' if met else 'MISS'}  {what}: {value}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    parser.add_argument("--requests", type=int, help="generated requests per scale (10000)")
    parser.add_argument("--rounds", type=int, help="timing rounds (7)")
    parser.add_argument("--block", type=int, help="requests per engine per round (2000)")
    parser.add_argument("--oracle-block", type=int, help="the same for the plain evaluator (200)")
    parser.add_argument("--scales", default="200,2000", help="rule counts (200,2000)")
    parser.add_argument("--engines", default=",".join(e.name for e in ENGINES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load-repeats", type=int, help="Lictor loads to take the median of (3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (2000 if quick else 10_000)
    args.rounds = args.rounds or (3 if quick else 7)
    args.block = args.block or (1000 if quick else 2000)
    args.oracle_block = args.oracle_block or (50 if quick else 200)
    args.load_repeats = args.load_repeats or (1 if quick else 3)
    args.scales = [int(s) for s in args.scales.split(",")]
    args.engines = args.engines.split(",")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 (targets are reported, not enforced)."""
    args = parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = run(args, say)
    result["targets"] = [
        {"target": what, "met": met, "value": value} for what, met, value in targets(result)
    ]
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
