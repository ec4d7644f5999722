"""``lictor audit``: verify the trail, prove a decision is in it, export it, sign a checkpoint.

These are the auditor's commands, so they open the store read-only in spirit: nothing
here migrates or creates a database, and only ``checkpoint`` writes (one row, after the
trail verified). Exit codes follow the table in :mod:`lictor.cli.main`: 0 ok, 1 the
trail or proof does not verify, 2 usage, 3 bad input or configuration.

Keys: checkpoints are checked with the public half of ``<data_dir>/checkpoint-key.pem``
when that file is here, or with ``--public-key FILE`` for an auditor who holds only the
public key.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.markup import escape

from lictor.cli.serve import existing_store, load_cli_settings
from lictor.core.audit.chain import SignatureCheck
from lictor.core.decisions import format_time, parse_time
from lictor.errors import ConfigError
from lictor.identity.keys import load_signer, verifier_from_public_pem
from lictor.service.audit_ops import (
    VerifyReport,
    inclusion_proof_for,
    proof_to_json,
    sign_checkpoint,
    verify_proof,
    verify_trail,
)
from lictor.service.exports import export_jsonl, export_ocsf
from lictor.service.ports import AuditQuery, AuditStore
from lictor.settings import Settings

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="Verify, prove and export the tamper-evident audit trail.", no_args_is_help=True
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default: lictor.toml here).")
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: sqlite:///<data-dir>/lictor.db)."),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory holding lictor.db and checkpoint-key.pem."),
]
PublicKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--public-key", help="Checkpoint public key (PEM), for auditors without the data dir."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


class ExportFormat(StrEnum):
    """What ``lictor audit export`` writes."""

    JSONL = "jsonl"
    OCSF = "ocsf"


# Each command imports its helpers from lictor.cli.main when it runs, not at import time:
# main registers this app, so a top-level import would be circular whichever of the two
# modules is imported first.


def _settings(config: Path | None, store: str | None, data_dir: Path | None) -> Settings:
    return load_cli_settings(config, store_url=store, data_dir=data_dir)


@contextmanager
def _opened_store(settings: Settings) -> Iterator[AuditStore]:
    """The audit trail of the configured store, which must exist (never created here)."""
    with existing_store(settings) as store:
        yield store.audit


def _verifier(settings: Settings, public_key: Path | None) -> SignatureCheck | None:
    """The checkpoint signature check: ``--public-key``, else the data dir's key, else None."""
    if public_key is not None:
        try:
            pem = public_key.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read public key {str(public_key)!r}: {exc.strerror}"
            ) from None
        return verifier_from_public_pem(pem)
    key_path = settings.checkpoint_key_path
    if key_path.exists():
        return verifier_from_public_pem(load_signer(key_path).public_key_pem())
    return None


def _require(check: SignatureCheck | None, settings: Settings) -> SignatureCheck:
    if check is None:
        raise ConfigError(
            f"no checkpoint key at {settings.checkpoint_key_path}: pass --public-key FILE "
            "or --data-dir DIR so checkpoint signatures can be checked"
        )
    return check


def _write_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@audit_app.command()
def verify(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    public_key: PublicKeyOpt = None,
    unsafe_skip_signatures: Annotated[
        bool,
        typer.Option(
            "--unsafe-skip-signatures",
            help="Check the chain and checkpoint roots without a key. Whoever can write "
            "the database can then forge checkpoints too.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify every record and every signed checkpoint. Exit 0 intact, 1 tampered."""
    from lictor.cli.main import EXIT_FAILED, errors_mapped, fail

    with errors_mapped():
        settings = _settings(config, store, data_dir)
        check = _verifier(settings, public_key)
        if not unsafe_skip_signatures:
            check = _require(check, settings)
        with _opened_store(settings) as audit:
            report = verify_trail(audit, check)
    if as_json:
        _write_json(report.to_json())
    else:
        _print_report(report)
    if not report.ok:
        bad = report.bad_record
        where = (
            f"first bad record: seq {report.error_index}"
            if report.error_index is not None
            else "the trail"
        )
        if bad is not None and bad.get("decision_id"):
            where += f" (decision {bad['decision_id']})"
        fail(f"audit trail does not verify; {where}: {report.error}", EXIT_FAILED)


def _print_report(report: VerifyReport) -> None:
    from lictor.cli.main import out

    if report.ok:
        out.print(f"[bold green]ok[/] {report.size} records verified", markup=True)
    else:
        out.print(f"[bold red]TAMPERED[/] after {report.size} good records", markup=True)
    out.print(f"  root         {report.root_hash}")
    out.print(f"  head         {report.head_hash}")
    signed = (
        "signatures verified" if report.signatures_verified else "[yellow]signatures NOT checked[/]"
    )
    out.print(
        f"  checkpoints  {report.checkpoints_checked} of {report.checkpoints_total} "
        f"checked, {signed}",
        markup=True,
    )
    latest = report.latest_checkpoint
    if latest is not None:
        out.print(
            f"  latest       size {latest['tree_size']}, issued {escape(latest['issued_at'])}, "
            f"key {escape(latest['key_id'])}"
        )
    if report.ok and report.checkpoints_total == 0:
        out.print(
            "  [yellow]no signed checkpoint yet: truncation cannot be detected[/] "
            "(sign one with `lictor audit checkpoint`)",
            markup=True,
        )


@audit_app.command()
def prove(
    decision_id: Annotated[str, typer.Argument(help="The decision to prove.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the proof here (default: stdout).")
    ] = None,
) -> None:
    """Print an RFC 9162 inclusion proof of a decision against the newest checkpoint."""
    from lictor.cli.main import errors_mapped

    with errors_mapped():
        settings = _settings(config, store, data_dir)
        with _opened_store(settings) as audit:
            proof = inclusion_proof_for(audit, decision_id)
        text = proof_to_json(proof) + "\n"
        if out_file is None:
            sys.stdout.write(text)
        else:
            _write_text(out_file, text)


@audit_app.command("verify-proof")
def verify_proof_command(
    source: Annotated[str, typer.Argument(help="Proof JSON file, or - for stdin.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    public_key: PublicKeyOpt = None,
) -> None:
    """Check a proof from `lictor audit prove` with the public key alone. Exit 0 or 1."""
    from lictor.cli.main import errors_mapped, out, read_json

    with errors_mapped():
        settings = _settings(config, None, data_dir)
        check = _require(_verifier(settings, public_key), settings)
        proof = read_json(source)
        verify_proof(proof, check)
    checkpoint = proof["checkpoint"]
    out.print(
        f"[bold green]ok[/] decision {escape(str(proof['decision_id']))} is record "
        f"{proof['leaf_index']} of the trail signed at size {checkpoint['tree_size']} "
        f"({escape(checkpoint['issued_at'])}, key {escape(checkpoint['key_id'])})",
        markup=True,
    )


@audit_app.command()
def export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl: sealed records; ocsf: OCSF events.")
    ] = ExportFormat.JSONL,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent.")] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only this principal.")
    ] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Only this tool.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="allow, deny or review.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="decision, result or rejected.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this RFC 3339 time on.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this RFC 3339 time.")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: stdout).")
    ] = None,
    include_arguments: Annotated[
        bool, typer.Option("--include-arguments", help="OCSF: put tool arguments in the events.")
    ] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export records as JSON Lines: the sealed records, or OCSF 1.8.0 API Activity events."""
    from lictor.cli.main import err, errors_mapped

    with errors_mapped():
        query = AuditQuery(
            agent_id=agent,
            principal_id=principal,
            tool=tool,
            outcome=outcome,
            kind=kind,
            since=_time_option("--since", since),
            until=_time_option("--until", until),
            limit=1000,
        )
        settings = _settings(config, store, data_dir)
        with _opened_store(settings) as audit, _output(out_file) as stream:
            if fmt is ExportFormat.OCSF:
                stats = export_ocsf(audit, query, stream, include_arguments=include_arguments)
                summary = f"exported {stats.written} OCSF events"
                if stats.skipped:
                    summary += f" ({stats.skipped} records of other kinds skipped)"
            else:
                summary = f"exported {export_jsonl(audit, query, stream)} records"
    err.print(summary)


@audit_app.command()
def checkpoint(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Verify the trail, then sign and store a checkpoint over it now."""
    from lictor.cli.main import errors_mapped, out

    with errors_mapped():
        settings = _settings(config, store, data_dir)
        key_path = settings.checkpoint_key_path
        if not key_path.exists():
            raise ConfigError(
                f"no checkpoint key at {key_path}; pass the --data-dir that holds "
                "checkpoint-key.pem (only the key's owner can sign checkpoints)"
            )
        signer = load_signer(key_path)
        check = verifier_from_public_pem(signer.public_key_pem())
        with _opened_store(settings) as audit:
            signed = sign_checkpoint(
                audit, signer, issued_at=format_time(datetime.now(UTC)), verify_signature=check
            )
            size = audit.size()
    if signed is None:
        out.print(f"nothing to sign: the newest checkpoint already covers all {size} records")
        return
    _write_json(signed.to_dict())


def _time_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError(
            f"{name} {value!r} is not an RFC 3339 time such as 2026-11-25T14:00:00Z"
        ) from None


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    with stream:
        yield stream


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror}") from None
