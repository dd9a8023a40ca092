"""`weighbridge custody ...`: put a submission's files in encrypted custody, prove them intact, show
who accessed them. There is deliberately no command that writes plaintext weights out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out

if TYPE_CHECKING:
    from weighbridge.services.custody import CustodyVault
    from weighbridge.store.db import Store

custody = typer.Typer(
    name="custody",
    help="Encrypted custody of submitted weights: deposit, verify, access log. Keys come from "
    "WEIGHBRIDGE_PASSPHRASE, WEIGHBRIDGE_KEY_FILE or a prompt. No command exports plaintext weights: "
    "that is reserved to the submitter role, which arrives with roles in a later release.",
    no_args_is_help=True,
)

CustodyDirOption = Annotated[
    Path | None,
    typer.Option(
        "--custody-dir",
        envvar="WEIGHBRIDGE_CUSTODY_DIR",
        help="Where ciphertext is kept (default: custody/ under $WEIGHBRIDGE_HOME, ~/.weighbridge).",
        show_default=False,
    ),
]
SubmissionArg = Annotated[str, typer.Argument(help="Submission id (or a unique prefix).")]
PurposeOption = Annotated[str, typer.Option("--purpose", help="Why: recorded in the access log.")]


def register(app: typer.Typer) -> None:
    app.add_typer(custody, name="custody")


def _vault(store: Store, custody_dir: Path | None) -> CustodyVault:
    from weighbridge.services.custody import CustodyVault, default_custody_root
    from weighbridge.services.intake import local_key_source

    source = local_key_source(err.print, create=False, interactive=sys.stdin.isatty())
    return CustodyVault(store, custody_dir or default_custody_root(), source)


@custody.command("deposit")
@friendly_errors
def deposit(
    submission: SubmissionArg,
    purpose: PurposeOption = "intake",
    custody_dir: CustodyDirOption = None,
    db: DbOption = None,
) -> None:
    """Encrypt the files of a submission into custody (checked against its manifest on the way)."""
    from weighbridge.services.custody import submitted_files

    store = open_store(db)
    try:
        row = store.find_submission(submission)
        files = submitted_files(row)
        rows = _vault(store, custody_dir).deposit(row.id, files, purpose=purpose)
    finally:
        store.close()
    total = sum(r.plaintext_bytes for r in rows)
    out.print(f"Submission {row.id[:8]}: {len(rows)} file(s), {total / 1e6:.1f} MB encrypted into custody")


@custody.command("verify")
@friendly_errors
def verify(
    submission: SubmissionArg,
    purpose: PurposeOption = "integrity check",
    custody_dir: CustodyDirOption = None,
    db: DbOption = None,
) -> None:
    """Decrypt and re-hash every stored file and compare with the manifest. Exit 0 valid, 1 not."""
    store = open_store(db)
    try:
        row = store.find_submission(submission)
        result = _vault(store, custody_dir).verify(row.id, purpose=purpose)
    finally:
        store.close()
    for check in result.files:
        if check.ok:
            out.print(f"[green]ok[/]      {check.path}")
        else:
            out.print(f"[bold red]FAILED[/]  {check.path}: {check.problem} ({check.reason})")
    if not result.ok:
        out.print(f"Custody of submission {row.id[:8]} is [bold red]NOT intact[/].")
        raise typer.Exit(code=1)
    out.print(f"Custody of submission {row.id[:8]} is intact: every file matches the manifest.")


@custody.command("log")
@friendly_errors
def log(
    submission: Annotated[str | None, typer.Argument(help="Only this submission (id or prefix).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    db: DbOption = None,
) -> None:
    """Show the access log: who deposited, verified or decrypted what, when and why."""
    from weighbridge.services.custody import read_access_log

    store = open_store(db)
    try:
        sid = store.find_submission(submission).id if submission else None
        entries = read_access_log(store, sid)
    finally:
        store.close()
    if as_json:
        for e in entries:
            record = {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "submission_id": e.submission_id,
                "purpose": e.purpose,
                "detail": e.detail,
            }
            out.print(json.dumps(record, ensure_ascii=False), markup=False)
        return
    if not entries:
        out.print("The access log is empty: nothing has been deposited or accessed yet.")
        return
    table = Table("when (UTC)", "actor", "action", "submission", "purpose", "detail")
    for e in entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            (e.submission_id or "")[:8],
            e.purpose,
            json.dumps(e.detail, ensure_ascii=False),
        )
    out.print(table)
