"""`weighbridge ledger ...`: read, export, verify and prove the audit ledger.

`verify` and `verify-proof` work offline from files; every other command reads the store. Exit code
1 means "not valid" (or a user error), 0 valid — scripts and CI can rely on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.ledger.verify import VerifyResult

ledger = typer.Typer(
    name="ledger",
    help="The audit ledger: every action as a signed, hash-chained entry; Merkle checkpoints signed by "
    "the organisation key; offline verification of exported bundles and inclusion proofs.",
    no_args_is_help=True,
)

OrgKeyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--org-key",
        help="Trusted checkpoint signer: a key id (64 hex) or a PEM public key file. Repeatable. "
        "Without it any key listed in the bundle may sign checkpoints, and the signer ids are printed "
        "for you to compare with the organisation's published key.",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(ledger, name="ledger")


@ledger.command("show")
@friendly_errors
def show(
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the last N entries.")] = 20,
    subject: Annotated[str | None, typer.Option("--subject", help="Only entries about this subject.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, as in a bundle.")] = False,
    db: DbOption = None,
) -> None:
    """List ledger entries (the last 20 unless --last says otherwise)."""
    from weighbridge.ledger.records import entry_record
    from weighbridge.services.ledger import read_entries

    store = open_store(db)
    try:
        entries = read_entries(store, last=last, subject=subject)
    finally:
        store.close()
    if as_json:
        for e in entries:
            out.print(json.dumps(entry_record(e), ensure_ascii=False, sort_keys=True), markup=False)
        return
    if not entries:
        out.print("The ledger is empty: no action has been recorded yet.")
        return
    table = Table("seq", "time (UTC)", "actor", "action", "subject", "evidence", "entry hash")
    for column in table.columns:
        column.no_wrap = column.header not in ("actor", "subject")
    for e in entries:
        table.add_row(
            str(e.seq),
            e.time[:19].replace("T", " "),
            e.actor,
            e.action,
            e.subject,
            e.evidence_digest.removeprefix("sha256:")[:12],
            e.entry_hash[:12],
        )
    out.print(table)


@ledger.command("export")
@friendly_errors
def export(
    file: Annotated[Path, typer.Argument(help="Where to write the bundle (JSON Lines).", dir_okay=False)],
    checkpoint_first: Annotated[
        bool,
        typer.Option("--checkpoint", help="Sign a checkpoint over the whole ledger first (organisation key)."),
    ] = False,
    db: DbOption = None,
) -> None:
    """Write a self-contained audit bundle: entries, checkpoints and public keys, in one file."""
    from weighbridge.services.ledger import checkpoint, export_bundle
    from weighbridge.services.orgkey import organisation_signer

    store = open_store(db)
    try:
        if checkpoint_first:
            checkpoint(store, organisation_signer(notice=err.print))
        export_bundle(store, file)
    finally:
        store.close()
    with file.open("rb") as f:  # the header has the counts: no need to re-read a million entries
        header = json.loads(f.readline())["header"]
    entries, sizes = header["entries"], header["checkpoints"]
    out.print(f"Wrote {file}: {entries} entries, {len(sizes)} checkpoints, {header['keys']} keys.")
    uncovered = entries - (sizes[-1] if sizes else 0)
    if uncovered:
        out.print(
            f"[yellow]{uncovered} entries after the last checkpoint are not covered by one[/]; "
            "`weighbridge ledger export --checkpoint` signs one first."
        )


@ledger.command("verify")
@friendly_errors
def verify(
    file: Annotated[
        Path | None,
        typer.Argument(help="An exported bundle (offline). Without it: the store's ledger.", dir_okay=False),
    ] = None,
    store_flag: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Check the store's ledger (what happens without FILE anyway) and cross-check it with the review "
            "workflow: every signed review.* entry recorded as an event, every event backed by its entry.",
        ),
    ] = False,
    org_key: OrgKeyOption = None,
    chain_only: Annotated[
        bool, typer.Option("--chain-only", help="Skip signatures: hashes, links, order and roots only.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes checking signatures (large ledgers).")] = 1,
    pin: Annotated[
        list[str] | None,
        typer.Option(
            "--pin",
            help="SIZE:ROOT — a Merkle root you already hold (from an earlier bundle or proof) that the "
            "ledger must reproduce at that tree size. Repeatable.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Check the chain, every signature and every checkpoint; name the first bad entry. Exit 0 valid, 1 not.

    FILE may also be an inclusion proof from `ledger prove` (checked as `verify-proof` does). Without
    FILE (or with --store) the store is checked, and its review workflow with it: a review.* entry with
    no event (the process stopped between signing and recording) or an event with no matching entry
    is named, and also exits 1."""
    from weighbridge.services.ledger import verify_bundle, verify_store

    if file is not None and store_flag:
        raise WeighbridgeError(
            f"Both a file ({file}) and --store were given", "Check one: drop FILE to check the store, or --store"
        )
    trusted = _trusted_keys(org_key)
    pins = _pins(pin)
    if file is not None and _is_proof(file):
        from weighbridge.ledger.proof import verify_proof

        _report(verify_proof(json.loads(file.read_bytes()), trusted_keys=trusted), str(file), trusted is None)
        return
    if file is not None:
        result = verify_bundle(
            file, trusted_keys=trusted, check_signatures=not chain_only, jobs=jobs, pinned_roots=pins
        )
        _report(result, str(file), trusted is None)
        return
    from weighbridge.workflow.verify import orphans

    store = open_store(db)
    try:
        result = verify_store(
            store, trusted_keys=trusted, check_signatures=not chain_only, jobs=jobs, pinned_roots=pins
        )
        problems = orphans(store)
    finally:
        store.close()
    chain_ok = _show(result, "the store's ledger", trusted is None)
    if problems:
        out.print(
            f"[bold red]INVALID[/]  the review workflow: {len(problems)} disagreement(s) between the ledger and the "
            "review events:"
        )
        for p in problems:
            out.print(f"  - {p}", markup=False)
    else:
        out.print("[bold green]VALID[/]  the review workflow: every review.* entry is recorded by its event.")
    if not chain_ok or problems:
        raise typer.Exit(code=1)


@ledger.command("prove")
@friendly_errors
def prove(
    seq: Annotated[int, typer.Argument(min=1, help="The entry's sequence number.")],
    checkpoint: Annotated[
        int | None,
        typer.Option(
            "--checkpoint",
            min=1,
            help="Prove against the checkpoint at this tree size (default: first one covering the entry).",
        ),
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the proof here instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """An inclusion proof of one entry against a signed checkpoint (JSON; check it with verify-proof)."""
    from weighbridge.ledger.proof import proof_to_json
    from weighbridge.services.ledger import prove as make_proof

    store = open_store(db)
    try:
        proof = make_proof(store, seq, checkpoint_size=checkpoint)
    finally:
        store.close()
    text = json.dumps(proof_to_json(proof), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if out_file is None:
        out.print(text, markup=False, end="")
        return
    out_file.write_text(text)
    out.print(f"Wrote {out_file}: entry {seq} in the checkpoint at tree size {proof.checkpoint.tree_size}.")


@ledger.command("verify-proof")
@friendly_errors
def verify_proof_cmd(
    file: Annotated[Path, typer.Argument(help="A proof written by `ledger prove`.", dir_okay=False)],
    org_key: OrgKeyOption = None,
) -> None:
    """Check an inclusion proof offline. Exit 0 valid, 1 not."""
    from weighbridge.ledger.proof import verify_proof

    try:
        data = json.loads(file.read_bytes())
    except OSError as exc:
        raise WeighbridgeError(f"Cannot read {file}: {exc.strerror}", "Check the path") from exc
    except ValueError as exc:
        raise WeighbridgeError(f"{file} is not JSON", "Pass a file written by `weighbridge ledger prove`") from exc
    trusted = _trusted_keys(org_key)
    _report(verify_proof(data, trusted_keys=trusted), str(file), trusted is None)


@ledger.command("checkpoint")
@friendly_errors
def checkpoint_cmd(db: DbOption = None) -> None:
    """Sign the Merkle root of the whole ledger now with the organisation key."""
    from weighbridge.services.ledger import checkpoint
    from weighbridge.services.orgkey import organisation_signer

    store = open_store(db)
    try:
        cp = checkpoint(store, organisation_signer(notice=err.print))
    finally:
        store.close()
    out.print(f"Checkpoint at tree size {cp.tree_size}: root {cp.root}")
    out.print(f"Signed {cp.time} by key {cp.signer_key_id}")


def _report(result: VerifyResult, what: str, untrusted: bool) -> None:
    if not _show(result, what, untrusted):
        raise typer.Exit(code=1)


def _show(result: VerifyResult, what: str, untrusted: bool) -> bool:
    """Print the verdict; the caller decides when to exit, so the store check can add the workflow's."""
    if result.ok:
        out.print(f"[bold green]VALID[/]  {what}: {result.message}.")
        if untrusted and result.checkpoint_signers:
            signers = ", ".join(result.checkpoint_signers)
            out.print(f"Checkpoints signed by key(s) {signers}: compare with the organisation's published key id.")
        return True
    where = []
    if result.first_bad_seq is not None:
        where.append(f"first bad entry: {result.first_bad_seq}")
    if result.checkpoint is not None:
        where.append(f"bad checkpoint at tree size {result.checkpoint}")
    located = f" ({'; '.join(where)})" if where else ""
    out.print(f"[bold red]INVALID[/]  {what}{located}: {result.message}.")
    if result.entries:
        out.print(f"Entries 1..{result.entries} verified before the problem.")
    return False


def _pins(values: list[str] | None) -> dict[int, str]:
    pins: dict[int, str] = {}
    for value in values or []:
        size, _, root = value.partition(":")
        root = root.strip().lower()
        if not size.strip().isdigit() or int(size) < 1 or len(root) != 64 or root.strip("0123456789abcdef"):
            raise WeighbridgeError(f"--pin {value} is not SIZE:ROOT", "E.g. --pin 4000:<64 hex characters>")
        pins[int(size)] = root
    return pins


def _is_proof(file: Path) -> bool:
    """A proof is one small pretty-printed JSON object; a bundle starts with its header line."""
    from weighbridge.ledger.proof import PROOF_FORMAT

    try:
        with file.open("rb") as f:
            head = f.read(1 << 20)
            if head.startswith(b'{"header":') or f.read(1):
                return False
        data = json.loads(head)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == PROOF_FORMAT


def _trusted_keys(values: list[str] | None) -> list[str] | None:
    """Key ids from hex ids or PEM public-key files."""
    if not values:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from weighbridge.ledger.signing import key_id_of

    ids = []
    for value in values:
        candidate = value.strip().lower()
        if len(candidate) == 64 and all(c in "0123456789abcdef" for c in candidate):
            ids.append(candidate)
            continue
        path = Path(value)
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise WeighbridgeError(
                f"--org-key {value} is neither a key id (64 hex) nor a readable PEM public key",
                "Pass the organisation's key id or its org-key.pub.pem",
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise WeighbridgeError(f"--org-key {value} is not an Ed25519 public key", "Pass org-key.pub.pem")
        ids.append(key_id_of(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)))
    return ids


@ledger.command("org-key")
@friendly_errors
def org_key_cmd() -> None:
    """Print the organisation key's id and public key: what auditors pass to --org-key."""
    from weighbridge.ledger.signing import key_id_of
    from weighbridge.services.orgkey import PUBLIC_FILE, organisation_public_key
    from weighbridge.store.db import default_home

    public = organisation_public_key()
    out.print(f"key id:     {key_id_of(public)}")
    out.print(f"public key: {public.hex()}")
    out.print(f"PEM:        {default_home() / PUBLIC_FILE}")
