"""Write the quality corpus: ``python -m benchmarks.quality.generate [--check]``.

Draws sessions from the templates in :mod:`benchmarks.quality.scenarios` with one seeded
``random.Random``, places them in time, and writes one JSON line per action to
``corpus/train.jsonl`` (legitimate history the baselines learn from, never scored) and
``corpus/test.jsonl`` (what is scored). ``corpus/holdout.jsonl`` is a second scored split
drawn the same way from another seed (:data:`HOLDOUT_SEED`; its training half is
discarded): the same templates, other people, amounts, times and loop lengths, kept apart
to check that what was tuned on ``test`` carries over. The files are committed so the
corpus can be read and diffed; ``--check`` regenerates in memory and fails if they
differ. ``--seed N --split NAME`` writes one more scored split, ``corpus/NAME.jsonl``.

Line format (one action)::

    {"session_id", "split": "train|test", "scenario", "agent_kind",
     "attack_kind": null | "<kind>", "step", "label": "legitimate|attack",
     "at": RFC 3339 UTC, "request": <Lictor action request>,
     "result": {"status", "output", "labels"}}   # the result report if the call runs
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``lictor`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.quality.scenarios import (
    AGENT_OF,
    ATTACKS,
    LEGITIMATE,
    PURPOSE_OF,
    AgentKind,
    Session,
    When,
)

HERE: Final = Path(__file__).resolve().parent
CORPUS: Final = HERE / "corpus"
SEED: Final = 20261005
#: Drawn once, after the rules and the scoring were tuned on ``test``; never tuned on.
HOLDOUT_SEED: Final = 7_340_912
HOLDOUT: Final = "holdout"
ZONE: Final = ZoneInfo("Europe/Berlin")

#: Four weeks of history to learn from, then two weeks to score.
TRAIN_DAYS: Final = (date(2026, 9, 7), date(2026, 10, 2))
TEST_DAYS: Final = (date(2026, 10, 5), date(2026, 10, 16))
TRAIN_PER_KIND: Final = 60
TEST_PER_KIND: Final = 66
ATTACKS_PER_KIND: Final = 18


@dataclass(frozen=True, slots=True)
class Placed:
    """A session with its split, id and start time."""

    session: Session
    split: str
    start: datetime


def _days(span: tuple[date, date]) -> list[date]:
    first, last = span
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _start(rng: random.Random, span: tuple[date, date], when: When) -> datetime:
    days = _days(span)
    weekdays = [d for d in days if d.weekday() < 5]
    if when is When.OFFICE:
        day = rng.choice(weekdays)
        minute = rng.randint(8 * 60, 17 * 60 + 30)
    elif when is When.ON_CALL:
        day = rng.choice(days)
        minute = rng.randint(0, 24 * 60 - 1)
    else:
        day = rng.choice(days)
        minute = rng.randint(30, 4 * 60 + 30)
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=ZONE)
    return local.astimezone(UTC) + timedelta(seconds=rng.randint(0, 59))


def _pick(rng: random.Random, kind: AgentKind) -> Session:
    templates = LEGITIMATE[kind]
    template = rng.choices([t for t, _ in templates], [w for _, w in templates])[0]
    return template(rng)


def draw(seed: int = SEED) -> list[Placed]:
    """Draw every session of the corpus, in a fixed order, with start times."""
    rng = random.Random(seed)
    placed: list[Placed] = []
    for kind in AgentKind:
        for _ in range(TRAIN_PER_KIND):
            s = _pick(rng, kind)
            placed.append(Placed(s, "train", _start(rng, TRAIN_DAYS, s.when)))
        for _ in range(TEST_PER_KIND):
            s = _pick(rng, kind)
            placed.append(Placed(s, "test", _start(rng, TEST_DAYS, s.when)))
    for templates in ATTACKS.values():
        for i in range(ATTACKS_PER_KIND):
            s = templates[i % len(templates)](rng)
            placed.append(Placed(s, "test", _start(rng, TEST_DAYS, s.when)))
    return placed


def lines(placed: Sequence[Placed]) -> Iterator[dict[str, Any]]:
    """Yield the JSON lines of the sessions, sessions numbered per agent in time order."""
    numbered: dict[str, int] = {}
    for p in sorted(placed, key=lambda p: (p.start, p.session.scenario)):
        s = p.session
        agent = AGENT_OF[s.kind]
        numbered[agent] = numbered.get(agent, 0) + 1
        session_id = f"{agent}-{p.split}-{numbered[agent]:04d}"
        at = p.start
        context: dict[str, Any] = {"task": s.task, "purpose": PURPOSE_OF[s.kind]}
        if s.ticket:
            context["ticket"] = s.ticket
        for index, step in enumerate(s.steps):
            at += timedelta(seconds=step.gap_seconds)
            yield {
                "session_id": session_id,
                "split": p.split,
                "scenario": s.scenario,
                "agent_kind": s.kind.value,
                "attack_kind": s.attack_kind.value if s.attack_kind else None,
                "step": index,
                "label": "attack" if step.attack else "legitimate",
                "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "request": {
                    "agent_id": agent,
                    "principal": s.principal.principal(),
                    "delegation": [s.principal.email, agent],
                    "session_id": session_id,
                    "tool": step.tool,
                    "arguments": step.arguments,
                    "context": context,
                },
                "result": {
                    "status": step.status,
                    "output": step.output,
                    "labels": list(step.labels),
                },
            }


def _text(rows: Iterable[dict[str, Any]]) -> str:
    ordered = sorted(rows, key=lambda r: (r["at"], r["session_id"], r["step"]))
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in ordered)


def scored_split(seed: int, name: str) -> str:
    """Return the text of a scored split named ``name``, drawn with ``seed``.

    The draw is the whole corpus's (so a seed gives the same sessions whatever the name);
    only its test sessions are kept, renamed to ``name``.
    """
    if name == "train":
        raise ValueError("the training split is the history, not a scored split")
    kept = [replace(p, split=name) for p in draw(seed) if p.split == "test"]
    return _text(lines(kept))


def render(seed: int = SEED) -> dict[str, str]:
    """Return the text of each committed corpus file, actions in time order."""
    # Sessions are numbered per agent across both splits, in time order.
    rows = list(lines(draw(seed)))
    return {
        "train.jsonl": _text(r for r in rows if r["split"] == "train"),
        "test.jsonl": _text(r for r in rows if r["split"] == "test"),
        f"{HOLDOUT}.jsonl": scored_split(HOLDOUT_SEED, HOLDOUT),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the corpus, or with ``--check`` compare it with what is committed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.add_argument("--seed", type=int, help="with --split: draw one more scored split")
    parser.add_argument("--split", help="with --seed: its name (corpus/NAME.jsonl)")
    args = parser.parse_args(argv)
    if (args.seed is None) != (args.split is None):
        parser.error("--seed and --split go together")
    if args.split is not None:
        if args.split in ("train", "test", HOLDOUT) or not args.split.isidentifier():
            parser.error(f"--split {args.split!r}: pick a new plain name")
        CORPUS.mkdir(exist_ok=True)
        (CORPUS / f"{args.split}.jsonl").write_text(
            scored_split(args.seed, args.split), encoding="utf-8"
        )
        return 0
    stale = []
    for name, text in render().items():
        path = CORPUS / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            CORPUS.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale corpus files (rerun the generator): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
