"""Replay the quality corpus through a Governor and score the test split.

Every action of ``corpus/train.jsonl`` and ``corpus/test.jsonl`` is decided in time order
by one :class:`lictor.Governor`, with a fixed clock set to the action's timestamp, exactly
as live traffic would be decided. When an action is allowed, its result report (status,
output, labels) is sent with :meth:`Governor.report`, so session data flow, provenance and
baselines learn what the tool returned. A held or denied action never ran: no report.

The training split (four weeks before the test split) is the agents' history and is
**never scored**. It is replayed first, in time order and with result reports, through a
*history* Governor that allows whatever each agent's inventory grants and keeps every
baseline in its learning period, so every training action teaches, as it would have in
production, where a held legitimate action is approved by a person and then runs. The
baselines it learned are then loaded into the scored Governor (:meth:`RiskEngine.put_baseline`,
the same path as bootstrapping from an audit trail). Without this, a legitimate action
first seen after the learning period would be held in the history, never learned, and
counted against the baseline in the test split for want of a reviewer in the replay.

Only the scored split's actions count (``test`` by default; ``holdout`` is a second test
split drawn from another seed, see :mod:`.generate`):

* attack actions caught = deny + review over actions labelled ``attack``;
* legitimate actions caught = deny + review over actions labelled ``legitimate`` (also
  those inside attacked sessions, before the attack starts).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from evaluations.tally import Groups, Tally, counter_json
from lictor.core.agents import Agent
from lictor.core.decisions import Decision, Outcome, parse_time
from lictor.core.risk.baseline import Baseline
from lictor.errors import InvalidToolCall
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock
from lictor.service.ports import Clock
from lictor.service.risk import RiskSettings

HERE: Final = Path(__file__).resolve().parent
CORPUS: Final = HERE / "corpus"
POLICIES: Final = HERE / "policies"
PERMISSIVE: Final = HERE / "permissive"
AGENTS: Final = HERE / "agents.yaml"
BUILTIN: Final = HERE.parent.parent / "examples" / "builtin" / "policies"
INVALID_REQUEST: Final = "lictor/invalid-request"
TRAIN: Final = "train"
SPLITS: Final = ("test", "holdout")
"""The scored splits: ``test``, on which the rules and scoring were tuned, and ``holdout``."""


class Configuration(StrEnum):
    """What decides: the policies, the behavioural baselines, or both.

    ``combined+builtin`` adds Lictor's shipped built-in risk rules
    (``examples/builtin/policies``: provenance and secret data flow) to the combined
    configuration, to show what adopting them as they are would change.
    """

    POLICY_ONLY = "policy-only"
    BASELINE_ONLY = "baseline-only"
    COMBINED = "combined"
    COMBINED_BUILTIN = "combined+builtin"

    @property
    def policies(self) -> Path:
        """The bundle: the security team's rules, or allow-what-the-inventory-grants."""
        return PERMISSIVE if self is Configuration.BASELINE_ONLY else POLICIES

    @property
    def extra_policies(self) -> Path | None:
        """A bundle loaded beside :attr:`policies` (as a subdirectory), if any."""
        return BUILTIN if self is Configuration.COMBINED_BUILTIN else None

    def is_available(self) -> bool:
        """False when the built-in rules are not in this checkout."""
        extra = self.extra_policies
        return extra is None or extra.is_dir()

    def risk(self, learning: RiskSettings | None = None) -> RiskSettings:
        """Risk settings: baselines off for policy-only; ``learning`` sets the period."""
        settings = learning if learning is not None else RiskSettings()
        if self is Configuration.POLICY_ONLY:
            return RiskSettings(baseline=False, detect=settings.detect)
        return settings


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the corpus."""

    session_id: str
    split: str
    scenario: str
    agent_kind: str
    attack_kind: str | None
    step: int
    label: str
    at: datetime
    request: dict[str, Any]
    result: dict[str, Any]

    @property
    def is_attack(self) -> bool:
        """Whether the action serves an attacker or a misbehaviour."""
        return self.label == "attack"

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Action:
        """Parse one corpus line.

        Raises:
            KeyError, ValueError: the line is not a corpus action.
        """
        label = str(row["label"])
        if label not in ("attack", "legitimate"):
            raise ValueError(f"unknown label {label!r}")
        return cls(
            session_id=str(row["session_id"]),
            split=str(row["split"]),
            scenario=str(row["scenario"]),
            agent_kind=str(row["agent_kind"]),
            attack_kind=row.get("attack_kind"),
            step=int(row["step"]),
            label=label,
            at=parse_time(str(row["at"])),
            request=dict(row["request"]),
            result=dict(row["result"]),
        )


def corpus_files(split: str = "test") -> list[Path]:
    """The history and one scored split: ``corpus/train.jsonl`` and ``corpus/<split>.jsonl``."""
    return [CORPUS / f"{TRAIN}.jsonl", CORPUS / f"{split}.jsonl"]


def read_corpus(paths: Iterable[Path] | None = None) -> list[Action]:
    """Read corpus files and return every action in replay order (time, session, step).

    Without ``paths``: the history and the ``test`` split (:func:`corpus_files`).
    """
    files = list(paths) if paths is not None else corpus_files()
    actions: list[Action] = []
    for path in files:
        with path.open(encoding="utf-8") as lines:
            actions.extend(Action.from_json(json.loads(line)) for line in lines if line.strip())
    return sorted(actions, key=lambda a: (a.at, a.session_id, a.step))


@dataclass(frozen=True, slots=True)
class Scored:
    """A test action and what Lictor answered."""

    action: Action
    outcome: Outcome
    rules: tuple[str, ...]
    signals: tuple[str, ...]
    score: float

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json`` (the evidence behind a miss or a false alarm)."""
        a = self.action
        return {
            "session_id": a.session_id,
            "step": a.step,
            "scenario": a.scenario,
            "attack_kind": a.attack_kind,
            "tool": a.request.get("tool"),
            "outcome": self.outcome.value,
            "rules": list(self.rules),
            "signals": list(self.signals),
            "score": round(self.score, 3),
        }


@dataclass(slots=True)
class QualityResult:
    """Scores of one configuration over a scored split."""

    configuration: Configuration
    split: str = "test"
    attacks: Tally = field(default_factory=Tally)
    legitimate: Tally = field(default_factory=Tally)
    by_attack_kind: Groups = field(default_factory=Groups)
    legitimate_by_agent_kind: Groups = field(default_factory=Groups)
    attack_sessions: Groups = field(default_factory=Groups)
    caught_by_rule: Counter[str] = field(default_factory=Counter)
    signals_on_legitimate: Counter[str] = field(default_factory=Counter)
    false_alarms: list[Scored] = field(default_factory=list)
    missed: list[Scored] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)
    training_actions: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {
            "configuration": self.configuration.value,
            "split": self.split,
            "training_actions_not_scored": self.training_actions,
            "attack_actions": self.attacks.to_json(),
            "legitimate_actions": self.legitimate.to_json(),
            "by_attack_kind": self.by_attack_kind.to_json(),
            "attack_sessions_with_an_attack_action_caught": self.attack_sessions.to_json(),
            "legitimate_by_agent_kind": self.legitimate_by_agent_kind.to_json(),
            "caught_attacks_by_rule": counter_json(self.caught_by_rule),
            "signals_on_legitimate_actions": counter_json(self.signals_on_legitimate),
            "false_alarms": [s.to_json() for s in self.false_alarms],
            "missed_attacks": [s.to_json() for s in self.missed],
        }


def governor_for(
    bundle: Path,
    extra: Path | None,
    agents: Path | Iterable[Agent],
    clock: Clock,
    risk: RiskSettings,
) -> Governor:
    """A Governor over ``bundle`` (plus ``extra`` as its ``builtin/`` subdirectory).

    A bundle is every YAML file under one directory, so an extra bundle is copied with the
    main one into a temporary directory; the Governor compiles it before it returns.
    """
    if extra is None:
        return Governor.from_paths(bundle, agents, clock=clock, risk=risk)
    with tempfile.TemporaryDirectory(prefix="lictor-quality-") as scratch:
        merged = Path(scratch) / "policies"
        shutil.copytree(bundle, merged)
        shutil.copytree(extra, merged / "builtin")
        return Governor.from_paths(merged, agents, clock=clock, risk=risk)


def build_governor(
    configuration: Configuration,
    clock: FixedClock,
    *,
    agents: Path = AGENTS,
    learning: RiskSettings | None = None,
) -> Governor:
    """A Governor for one configuration, deciding with ``clock``."""
    return governor_for(
        configuration.policies,
        configuration.extra_policies,
        agents,
        clock,
        configuration.risk(learning),
    )


def decide_all(
    governor: Governor, clock: FixedClock, actions: Sequence[Action]
) -> Iterator[tuple[Action, Decision | None]]:
    """Decide each action at its time; report the result of each allowed one.

    Yields the action and its decision (None: the request was malformed and refused,
    which the caller counts as a deny: the call does not run).
    """
    for action in actions:
        clock.set(action.at)
        try:
            decision = governor.decide(action.request)
        except InvalidToolCall:
            yield action, None
            continue
        if decision.outcome is Outcome.ALLOW:
            governor.report({"decision_id": decision.decision_id, **action.result})
        yield action, decision


def learn_history(actions: Sequence[Action], agents: Path = AGENTS) -> dict[str, Baseline]:
    """Replay the history through a Governor that allows and learns everything registered.

    Returns each agent's baseline. Its learning period never ends (so risk never holds
    anything here) and the permissive bundle allows every registered tool.
    """
    if not actions:
        return {}
    clock = FixedClock(actions[0].at)
    history = Governor.from_paths(
        PERMISSIVE,
        agents,
        clock=clock,
        risk=RiskSettings(learning_observations=2**31, learning_seconds=0),
    )
    seen: set[str] = set()
    for action, _ in decide_all(history, clock, actions):
        seen.add(str(action.request["agent_id"]))
    engine = history.risk
    if engine is None:  # pragma: no cover - from_paths with risk settings always has one
        return {}
    return {agent: engine.baseline(agent) for agent in sorted(seen)}


def replay(
    configuration: Configuration,
    actions: Sequence[Action] | None = None,
    *,
    agents: Path = AGENTS,
    learning: RiskSettings | None = None,
    split: str = "test",
) -> QualityResult:
    """Learn from the training actions, then decide and score ``split``'s actions in time order.

    ``agents`` replaces the inventory (for what-if runs: other tolerances or allowlists).
    Actions of any other split are ignored.
    """
    ordered = list(actions) if actions is not None else read_corpus(corpus_files(split))
    training = [a for a in ordered if a.split == TRAIN]
    scored = [a for a in ordered if a.split == split]
    result = QualityResult(configuration, split, training_actions=len(training))
    if not scored:
        return result
    clock = FixedClock(scored[0].at)
    governor = build_governor(configuration, clock, agents=agents, learning=learning)
    engine = governor.risk
    if engine is not None and engine.settings.baseline:
        config = engine.settings.config()
        for agent, baseline in learn_history(training, agents).items():
            # Re-read under the scoring configuration: same history, its learning period.
            engine.put_baseline(agent, Baseline.from_json(baseline.to_json(), config), clock.now())
    caught_sessions: dict[str, tuple[str, bool]] = {}
    for action, decision in decide_all(governor, clock, scored):
        if decision is None:
            answer = Scored(action, Outcome.DENY, (INVALID_REQUEST,), (), 0.0)
        else:
            answer = Scored(
                action,
                decision.outcome,
                tuple(r.rule for r in decision.reasons),
                tuple(sorted({s.kind for s in decision.risk.signals})),
                decision.risk.score,
            )
        result.scored.append(answer)
        caught = answer.outcome is not Outcome.ALLOW
        if action.is_attack:
            kind = action.attack_kind or "unknown"
            result.attacks.add(answer.outcome)
            result.by_attack_kind.add(kind, answer.outcome)
            seen = caught_sessions.get(action.session_id, (kind, False))
            caught_sessions[action.session_id] = (kind, seen[1] or caught)
            if caught:
                result.caught_by_rule.update(set(answer.rules))
            else:
                result.missed.append(answer)
        else:
            result.legitimate.add(answer.outcome)
            result.legitimate_by_agent_kind.add(action.agent_kind, answer.outcome)
            result.signals_on_legitimate.update(answer.signals)
            if caught:
                result.false_alarms.append(answer)
    for kind, caught in caught_sessions.values():
        result.attack_sessions.add(kind, Outcome.DENY if caught else Outcome.ALLOW)
    return result
