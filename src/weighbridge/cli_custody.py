"""`weighbridge custody ...`: put a submission's files in encrypted custody, prove them intact, show
who accessed them, rotate the master key. There is deliberately no command that writes plaintext
weights out."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.intake.custody import KeyKind, KeySource
    from weighbridge.services.custody import CustodyVault, LocalKey
    from weighbridge.store.db import Store

custody = typer.Typer(
    name="custody",
    help="Encrypted custody of submitted weights: deposit, verify, access log, key rotation. Keys come "
    "from WEIGHBRIDGE_PASSPHRASE, WEIGHBRIDGE_KEY_FILE or a prompt; without either, one local user gets "
    "a key file outside the data directory ($WEIGHBRIDGE_KEY_DIR, default ~/.config/weighbridge). "
    "Decrypting weights (evaluate, reproduce) needs the evaluator role. No command exports plaintext "
    "weights: that is reserved to the submitter role, which arrives in a later release.",
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


def _notice(line: str) -> None:
    err.print(escape(line))


def _local_key() -> LocalKey:
    from weighbridge.services.custody import local_key

    return local_key(_notice, create=False, interactive=sys.stdin.isatty())


def _vault(store: Store, custody_dir: Path | None, key: LocalKey | None = None) -> CustodyVault:
    from weighbridge.services.custody import CustodyVault, default_custody_root

    source = (key or _local_key()).source
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
    from weighbridge.services.identity import current_actor

    store = open_store(db)
    try:
        row = store.find_submission(submission)
        files = submitted_files(row)
        vault = _vault(store, custody_dir)
        vault.check_key()  # a wrong key stops here, before anything is written
        rows = vault.deposit(row.id, files, purpose=purpose, actor=current_actor(store, _notice))
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
    from weighbridge.services.identity import current_actor

    store = open_store(db)
    try:
        row = store.find_submission(submission)
        vault = _vault(store, custody_dir)
        result = vault.verify(row.id, purpose=purpose, actor=current_actor(store, _notice))
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


class _TypedPassphrase:
    """A new passphrase typed at the terminal, asked for only when the rotation needs it (after the
    caller's role and the current key were checked), twice, and once per process."""

    def __init__(self) -> None:
        self._value: str | None = None

    @property
    def kind(self) -> KeyKind:
        return "passphrase"

    def secret(self, *, new: bool) -> bytes:
        from weighbridge.intake.custody import Passphrase

        if self._value is None:
            first = getpass.getpass("New custody passphrase: ")
            if getpass.getpass("Repeat the new passphrase: ") != first:
                raise WeighbridgeError("The two passphrases differ", "Run the command again")
            self._value = first
        return Passphrase(self._value).secret(new=new)


def _new_passphrase_source() -> KeySource:
    from weighbridge.intake.custody import Passphrase

    value = os.environ.get("WEIGHBRIDGE_NEW_PASSPHRASE")
    if value:
        return Passphrase(value)
    if not sys.stdin.isatty():
        raise WeighbridgeError(
            "A new passphrase is needed and there is no terminal to ask for it", "Set WEIGHBRIDGE_NEW_PASSPHRASE"
        )
    return _TypedPassphrase()


@custody.command("rotate")
@friendly_errors
def rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="The new master key: a file of 32 random bytes (raw or base64), kept outside the data directory.",
        ),
    ] = None,
    create: Annotated[
        bool, typer.Option("--create", help="Generate --new-key-file (32 random bytes, mode 0600); it must not exist.")
    ] = False,
    new_passphrase: Annotated[
        bool,
        typer.Option(
            "--new-passphrase",
            help="Lock with a new passphrase instead: typed twice, or WEIGHBRIDGE_NEW_PASSPHRASE for scripts.",
        ),
    ] = False,
    purpose: PurposeOption = "rotate the custody master key",
    custody_dir: CustodyDirOption = None,
    db: DbOption = None,
) -> None:
    """Re-key custody (admins only): re-wrap every submission's data key under a new master key in one
    transaction; the encrypted files are not rewritten. The current key is given as for any command;
    afterwards only the new one opens the store. Without options, a store still using the old key
    file inside the data directory moves to a new key file outside it."""
    from weighbridge.intake.custody import KeyFile
    from weighbridge.services.custody import (
        default_custody_root,
        default_key_file,
        require_admin,
        write_key_file,
    )
    from weighbridge.services.identity import current_actor
    from weighbridge.store.db import default_home

    if new_key_file is not None and new_passphrase:
        raise WeighbridgeError("Give either --new-key-file or --new-passphrase, not both", "Choose one new key")
    if create and new_key_file is None:
        raise WeighbridgeError("--create needs the path to create", "Add --new-key-file PATH")
    current = _local_key()
    if new_key_file is None and not new_passphrase:
        if current.origin != "legacy":
            raise WeighbridgeError(
                "Say what the new key is",
                "Give --new-key-file PATH --create (a key file kept away from the data directory) or --new-passphrase",
            )
        new_key_file, create = default_key_file(), True
    store = open_store(db)
    created: Path | None = None
    try:
        actor = current_actor(store, _notice)
        require_admin(actor)  # before a key file is made or a passphrase asked for
        source: KeySource
        if new_key_file is not None:
            new_key_file = new_key_file.expanduser()
            for place in (default_home(), custody_dir or default_custody_root()):
                if new_key_file.resolve().is_relative_to(place.expanduser().resolve()):
                    _notice(
                        f"Warning: {new_key_file} is inside {place}, beside the data it protects: a copy of that "
                        "directory would decrypt the weights. Keep the key elsewhere."
                    )
            if create:
                write_key_file(new_key_file)
                created = new_key_file
            source = KeyFile(new_key_file)
        else:
            source = _new_passphrase_source()
        result = _vault(store, custody_dir, current).rotate(source, actor, purpose=purpose)
    except BaseException:
        if created is not None:
            created.unlink(missing_ok=True)  # a key that locks nothing must not linger
        raise
    finally:
        store.close()
    new = f"the key file {new_key_file}" if new_key_file is not None else "the new passphrase"
    out.print(
        f"Rotated the custody master key: {result.data_keys} data key(s) of {result.files} file(s) re-wrapped "
        f"under {new} ({result.old['kind']}/{result.old['kdf']} -> {result.new['kind']}/{result.new['kdf']}); "
        "the encrypted files are unchanged. The old key no longer opens this store.",
        markup=False,
    )
    if new_key_file is not None and new_key_file != default_key_file():
        out.print(f"From now on set WEIGHBRIDGE_KEY_FILE={new_key_file} for this store.", markup=False)
    elif new_key_file is None:
        out.print("From now on set WEIGHBRIDGE_PASSPHRASE (scripts) or type the passphrase when asked.", markup=False)
    if current.origin == "env":
        out.print("Replace the old key wherever WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE is set.", markup=False)
    elif current.path is not None and current.path != new_key_file:
        default = current.origin == "default"
        still_used = " (while it exists, weighbridge offers it when no key is set)" if default else ""
        out.print(
            f"Delete the old key file once you no longer need it for database backups made before now{still_used}: "
            f"rm {shlex.quote(str(current.path))}",
            markup=False,
        )
