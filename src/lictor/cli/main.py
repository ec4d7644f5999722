"""The ``lictor`` command: argv in, exit code out. The composition root of the CLI.

Exit codes (also in the README):

====  =====================================================================
0     success; for ``decide``: the outcome is allow
1     a check failed: policy tests failed, the audit trail does not verify
2     usage error (unknown option, missing argument)
3     invalid input: a malformed request, policy, inventory or config file
4     internal error (a bug: please report it with ``--verbose`` output)
10    ``decide``: the outcome is deny
11    ``decide``: the outcome is review
====  =====================================================================
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lictor.cli.agents import agents_app
from lictor.cli.alerts import alerts_app
from lictor.cli.audit import audit_app
from lictor.cli.baseline import register_baseline
from lictor.cli.credentials import credentials_app
from lictor.cli.discover import discover_command
from lictor.cli.lifecycle import print_findings
from lictor.cli.lifecycle import register as register_lifecycle
from lictor.cli.mcp import mcp_app
from lictor.cli.response import register as register_response
from lictor.cli.reviews import reviews_app
from lictor.cli.serve import register as register_serve
from lictor.core.agents import Agent
from lictor.core.decisions import Decision, Outcome, parse_time
from lictor.errors import (
    AuditIntegrityError,
    ConfigError,
    InvalidToolCall,
    LictorError,
    NotFound,
    PolicyError,
)
from lictor.service.governor import Governor
from lictor.service.lifecycle import lint_policy
from lictor.service.memory import FixedClock
from lictor.service.policies import load_bundle, load_inventory
from lictor.service.policy_tests import collect_cases, run_cases

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_INTERNAL = 4
EXIT_DENY = 10
EXIT_REVIEW = 11

OUTCOME_EXIT = {Outcome.ALLOW: EXIT_OK, Outcome.DENY: EXIT_DENY, Outcome.REVIEW: EXIT_REVIEW}
OUTCOME_STYLE = {
    Outcome.ALLOW: "bold green",
    Outcome.DENY: "bold red",
    Outcome.REVIEW: "bold yellow",
}

app = typer.Typer(
    name="lictor",
    help="Govern autonomous AI agents: every tool call is allowed, denied or held for review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Check and test policy bundles.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(agents_app, name="agents")
app.add_typer(alerts_app, name="alerts")
app.command("discover")(discover_command)
app.add_typer(credentials_app, name="credentials")
register_serve(app)
register_response(app)
app.add_typer(reviews_app, name="reviews")
app.add_typer(mcp_app, name="mcp-proxy")
register_lifecycle(policy_app, agents_app)
register_baseline(agents_app)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"verbose": False}

PoliciesOpt = Annotated[
    Path, typer.Option("--policies", "-p", help="Policy bundle: a directory of YAML files.")
]
AgentsOpt = Annotated[
    Path | None, typer.Option("--agents", "-a", help="Inventory file (YAML with 'agents:').")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Decide as if at this RFC 3339 time (default: the clock)."),
]


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks.")] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


@contextmanager
def errors_mapped() -> Iterator[None]:
    """Map Lictor errors to one stderr line and an exit code (the CLI's one table)."""
    try:
        yield
    except typer.Exit:
        raise
    except (PolicyError, InvalidToolCall) as exc:
        fail(str(exc), EXIT_INVALID)
    except ConfigError as exc:
        fail(str(exc), EXIT_INVALID)
    except NotFound as exc:
        fail(str(exc), EXIT_INVALID)
    except AuditIntegrityError as exc:
        fail(str(exc), EXIT_FAILED)
    except LictorError as exc:
        fail(str(exc), EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the CLI's top-level handler
        if _state["verbose"]:
            err.print_exception()
        fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --verbose)", EXIT_INTERNAL)


def default_inventory(policies: Path, agents: Path | None) -> list[Agent]:
    """Load ``--agents``, or ``agents.yaml`` beside the policy directory when present."""
    if agents is not None:
        return load_inventory(agents)
    guess = (policies if policies.is_dir() else policies.parent).parent / "agents.yaml"
    return load_inventory(guess) if guess.is_file() else []


def build_governor(policies: Path, agents: Path | None, now: str | None) -> Governor:
    """Build an embedded Governor for one CLI run."""
    clock = FixedClock(parse_time(now)) if now else None
    return Governor.from_paths(policies, default_inventory(policies, agents), clock=clock)


def read_json(source: str) -> Any:
    """Read one JSON document from a file path or ``-`` (stdin)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {source!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidToolCall(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def print_decision(decision: Decision, title: str = "") -> None:
    """Print a decision for people: outcome, then each deciding reason."""
    style = OUTCOME_STYLE[decision.outcome]
    head = f"[{style}]{decision.outcome.value.upper():6}[/]"
    out.print(f"{head} {escape(title)}".rstrip(), markup=True)
    for reason in decision.reasons:
        out.print(f"         [dim]{escape(reason.rule)}[/]  {escape(reason.message)}", markup=True)
    for reason in decision.shadow:
        would = f"(shadow) {reason.rule} would {reason.effect.value}"
        out.print(f"         [dim]{escape(would)}[/]  {escape(reason.message)}", markup=True)


@app.command()
def decide(
    request: Annotated[str, typer.Argument(help="Request JSON file, or - for stdin.")] = "-",
    policies: PoliciesOpt = Path("policies"),
    agents: AgentsOpt = None,
    as_json: JsonOpt = False,
    now: NowOpt = None,
) -> None:
    """Decide one action request. Exit 0 allow, 10 deny, 11 review."""
    with errors_mapped():
        governor = build_governor(policies, agents, now)
        decision = governor.decide(read_json(request))
    if as_json:
        out.print_json(data=decision.to_json())
    else:
        print_decision(decision)
    raise typer.Exit(OUTCOME_EXIT[decision.outcome])


@app.command()
def replay(
    requests: Annotated[str, typer.Argument(help="JSON Lines of requests, or - for stdin.")],
    policies: PoliciesOpt = Path("policies"),
    agents: AgentsOpt = None,
    now: NowOpt = None,
    summary_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stderr.")
    ] = False,
) -> None:
    """Decide a JSON Lines file of requests; decisions go to stdout as JSON Lines.

    A bad line is reported with its number and skipped; the rest is still decided.
    Exit 0 when every line was decided, 3 when some line was bad.
    """
    with errors_mapped():
        governor = build_governor(policies, agents, now)
        try:
            stream = sys.stdin if requests == "-" else Path(requests).open(encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"cannot read {requests!r}: {exc.strerror}") from None
        outcomes: Counter[str] = Counter()
        by_rule: Counter[str] = Counter()
        bad: list[tuple[int, str]] = []
        with stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    decision = governor.decide(data)
                except json.JSONDecodeError as exc:
                    bad.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}"))
                    continue
                except InvalidToolCall as exc:
                    bad.append((number, str(exc)))
                    continue
                outcomes[decision.outcome.value] += 1
                for reason in decision.reasons:
                    by_rule[f"{decision.outcome.value}  {reason.rule}"] += 1
                sys.stdout.write(json.dumps(decision.to_json()) + "\n")
    if not summary_json:
        for number, problem in bad:
            err.print(f"[red]line {number}:[/] {escape(problem)}", markup=True)
    total = sum(outcomes.values())
    if summary_json:
        err.print_json(
            data={
                "decided": total,
                "bad_lines": [{"line": n, "error": p} for n, p in bad],
                "outcomes": dict(outcomes),
                "rules": dict(by_rule),
            }
        )
    else:
        table = Table(title=f"{total} decisions, {len(bad)} bad lines")
        table.add_column("outcome")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        for outcome in Outcome:
            count = outcomes.get(outcome.value, 0)
            share = f"{100 * count / total:.1f}%" if total else "-"
            table.add_row(outcome.value, str(count), share)
        err.print(table)
        rules = Table(title="deciding rules")
        rules.add_column("outcome / rule")
        rules.add_column("count", justify="right")
        for name, count in by_rule.most_common(15):
            rules.add_row(name, str(count))
        err.print(rules)
    raise typer.Exit(EXIT_INVALID if bad else EXIT_OK)


@policy_app.command("check")
def policy_check(
    directory: Annotated[Path, typer.Argument(help="Policy bundle directory.")],
    agents: AgentsOpt = None,
    as_json: JsonOpt = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when lint finds anything.")
    ] = False,
) -> None:
    """Validate a bundle (syntax, fields, CEL, duplicate ids, tests) and lint its rules.

    Lint findings (docs/lifecycle.md) are warnings: exit 0, or 1 with ``--strict``.
    """
    try:
        bundle = load_bundle(directory)
        inventory = default_inventory(directory, agents)
        cases = collect_cases(bundle.documents)
    except (PolicyError, ConfigError) as exc:
        if as_json:
            detail = exc.to_dict() if isinstance(exc, PolicyError) else {"message": str(exc)}
            out.print_json(data={"ok": False, "error": detail})
            raise typer.Exit(EXIT_INVALID) from None
        fail(str(exc), EXIT_INVALID)
    summary = {
        "ok": True,
        "version": bundle.version,
        "files": len(bundle.documents),
        "rules": len(bundle.policy.rules),
        "tests": len(cases),
        "agents": len(inventory),
        "timezone": bundle.policy.policy.timezone,
    }
    findings = lint_policy(bundle, inventory=inventory or None, cases=cases)
    summary["findings"] = [f.to_json() for f in findings]
    if as_json:
        out.print_json(data=summary)
    else:
        out.print(
            f"[green]ok[/] {summary['rules']} rules in {summary['files']} files, "
            f"{summary['tests']} tests, {summary['agents']} agents; version {bundle.version}",
            markup=True,
        )
        print_findings(findings)
    if strict and findings:
        raise typer.Exit(EXIT_FAILED)


@policy_app.command("test")
def policy_test(
    directory: Annotated[Path, typer.Argument(help="Policy bundle directory.")],
    agents: AgentsOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing tests.")] = False,
) -> None:
    """Run the bundle's YAML test cases. Exit 1 if any fails."""
    with errors_mapped():
        bundle = load_bundle(directory)
        inventory: dict[str, Agent] = {a.id: a for a in default_inventory(directory, agents)}
        cases = collect_cases(bundle.documents)
        results = run_cases(bundle, inventory, cases)
    failed = [r for r in results if not r.passed]
    exercised = set().union(*(r.exercised for r in results)) if results else set()
    untested = [r.id for r in bundle.policy.policy.rules if r.id not in exercised]
    if as_json:
        out.print_json(
            data={
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "untested_rules": untested,
                "results": [
                    {
                        "name": r.case.name,
                        "source": f"{r.case.source}:{r.case.line}",
                        "passed": r.passed,
                        "outcome": r.outcome.value if r.outcome else None,
                        "rules": list(r.rules),
                        "diff": list(r.diff),
                    }
                    for r in results
                ],
            }
        )
    else:
        for result in results:
            where = f"[dim]{escape(str(result.case.source))}:{result.case.line}[/]"
            if result.passed:
                if verbose:
                    out.print(f"[green]PASS[/] {escape(result.case.name)} {where}", markup=True)
                continue
            out.print(f"[bold red]FAIL[/] {escape(result.case.name)} {where}", markup=True)
            for line in result.diff:
                out.print(f"     {line}", markup=False)
        if untested:
            out.print(
                f"[yellow]rules no test decided:[/] {escape(', '.join(untested))}", markup=True
            )
        colour = "red" if failed else "green"
        out.print(
            f"[{colour}]{len(results) - len(failed)} passed, {len(failed)} failed[/]",
            markup=True,
        )
    if not results:
        fail(f"no test cases found under {directory}", EXIT_FAILED)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command()
def demo(
    examples: Annotated[
        Path | None, typer.Option(help="Examples directory (default: the repository's).")
    ] = None,
) -> None:
    """Run the scripted demo: example policies and agents, a sequence of agent actions."""
    from lictor.cli.demo import run_demo

    with errors_mapped():
        run_demo(out, examples)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors print usage and return 2)."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="lictor", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILED)
    return EXIT_OK


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
