"""`weighbridge notice ...`: verify a published notice offline, show it, revoke it, and render the
Hugging Face model-card snippet. Publishing is `weighbridge reviews publish` (the workflow)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.notice import NoticeContent, NoticeVerification

notice_app = typer.Typer(
    name="notice",
    help="Signed public notices: verify (offline), show, revoke, model-card snippet.",
    no_args_is_help=True,
)

NoticeArg = Annotated[Path, typer.Argument(help="The notice file (notice-ID.dsse.json).")]
KeyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--key",
        help="The organisation's public key (PEM or 64 hex characters); repeatable. "
        "Default: this installation's organisation key.",
        show_default=False,
    ),
]
RevocationsOption = Annotated[
    Path | None,
    typer.Option(
        "--revocations",
        help="The organisation's signed revocation list. Default: this installation's list, when it has one.",
        show_default=False,
    ),
]
REVOCATIONS_FILE = "revocations.dsse.json"


def register(app: typer.Typer) -> None:
    app.add_typer(notice_app, name="notice")


def default_revocations_path() -> Path:
    from weighbridge.store.db import default_home

    return default_home() / "notices" / REVOCATIONS_FILE


@notice_app.command("verify")
@friendly_errors
def verify(
    notice: NoticeArg,
    model: Annotated[
        Path | None, typer.Option("--model", help="Model file or directory to check against the notice.")
    ] = None,
    key: KeyOption = None,
    revocations: RevocationsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Check signature, revocation and (with --model) every model file. Exit 0 valid, 1 invalid."""
    from weighbridge.notice import verify_notice

    keys = _trusted_keys(key)
    rev_path = _revocations(revocations)
    result = verify_notice(notice, trusted_keys=keys, revocations=rev_path, model_path=model)
    if as_json:
        out.print(json.dumps(_result_json(result), indent=2), markup=False)
    else:
        _render_result(notice, result, rev_path, model)
    if not result.ok:
        raise typer.Exit(code=1)


def _render_result(path: Path, result: NoticeVerification, rev_path: Path | None, model: Path | None) -> None:
    for problem in result.problems:
        out.print(f"[bold red]✗[/] {problem.message}")
    n = result.notice
    if n is not None and not any(p.kind == "signature" for p in result.problems):
        out.print(f"[green]✓[/] signed by {n.organisation} (key {result.key_id[:16] if result.key_id else '?'}…)")
    if result.revocation_checked and result.revocation is None:
        out.print(f"[green]✓[/] not revoked (checked against {rev_path})")
    elif rev_path is None:
        out.print("[yellow]![/] revocation not checked: no revocation list given (--revocations)")
    if model is not None and result.model_checked and not any(p.kind.startswith("file") for p in result.problems):
        assert n is not None
        out.print(f"[green]✓[/] all {len(n.files)} model file(s) match their digests")
    if result.ok:
        assert n is not None
        _print_runs(n)
        out.print(
            f"Notice {n.notice_id} for [bold]{n.model_name}[/] is [bold green]VALID[/]: "
            f"{n.decided_release.replace('_', ' ')} (policy {n.policy_id} {n.policy_version})."
        )
    else:
        out.print(f"Notice {path.name} is [bold red]NOT VALID[/].")


def _print_runs(n: NoticeContent) -> None:
    """The runs the grades rest on: an auditor matches each journal digest with the reviewer's ledger."""
    for r in n.runs:
        whose = f"reference {r.reference}" if r.reference else "model"
        out.print(f"  evidence: {r.suite} run {r.run_id} ({whose}), journal {r.journal_digest}")
    if not n.runs:
        out.print("[yellow]![/] the notice names no evaluation runs (published before run evidence was recorded)")


def _result_json(result: NoticeVerification) -> dict[str, Any]:
    n = result.notice
    return {
        "valid": result.ok,
        "problems": [asdict(p) for p in result.problems],
        "notice_id": n.notice_id if n else None,
        "model": n.model_name if n else None,
        "manifest_digest": n.manifest_digest if n else None,
        "decided_release": n.decided_release if n else None,
        "runs": [asdict(r) for r in n.runs] if n else [],
        "key_id": result.key_id,
        "revocation_checked": result.revocation_checked,
        "model_checked": result.model_checked,
    }


@notice_app.command("show")
@friendly_errors
def show(notice: NoticeArg, key: KeyOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print what a notice states, after checking its signature (exit 1 when it does not verify)."""
    content = _verified(notice, key)
    if as_json:
        from weighbridge.notice import Envelope, Statement

        statement = Statement.from_payload(Envelope.from_bytes(notice.read_bytes()).payload)
        out.print(json.dumps(statement.to_json(), indent=2, ensure_ascii=False), markup=False)
        return
    d = content.dates
    out.print(f"[bold]{content.model_name}[/] ({content.model_format}) — notice {content.notice_id}")
    out.print(f"Manifest digest {content.manifest_digest} over {len(content.files)} file(s)")
    out.print(
        f"Release: decided [bold]{content.decided_release.replace('_', ' ')}[/], recommended "
        f"{content.recommended_release.replace('_', ' ')} (policy {content.policy_id} {content.policy_version})"
    )
    decided = f", decided {d.decided:%Y-%m-%d}" if d.decided else ""
    out.print(f"Submitted {d.submitted:%Y-%m-%d}{decided}, published {d.published:%Y-%m-%d}")
    out.print(f"Reviewer: {content.organisation} (key {content.reviewer_key_id})")
    for suite in content.suites:
        out.print(f"Suite {suite.id} {suite.version} (items {suite.content_hash[:16]}…)")
    table = Table("suite", "category", "n", "unsafe rate", "95 % interval", "grade")
    for g in content.grades:
        table.add_row(
            g.suite, g.name, str(g.n), f"{g.unsafe_rate:.1%}", f"[{g.ci_low:.1%}, {g.ci_high:.1%}]", g.grade or "—"
        )
    out.print(table)
    for line in content.rationale:
        out.print(f"  • {line}")
    _print_runs(content)


@notice_app.command("snippet")
@friendly_errors
def snippet(
    notice: NoticeArg,
    key: KeyOption = None,
    url: Annotated[str | None, typer.Option("--url", help="Where the notice is published (linked).")] = None,
) -> None:
    """Hugging Face model-card snippet: `model-index` YAML for the front matter and a badge line."""
    from weighbridge.notice import snippet as render

    out.print(render(_verified(notice, key), url), markup=False, end="")


@notice_app.command("list")
@friendly_errors
def list_(db: DbOption = None) -> None:
    """Notices published from this store, with revocations."""
    from weighbridge.store.notice_schema import list_notices, revocation_list

    store = open_store(db)
    try:
        rows = list_notices(store)
        revoked = {r.notice_id: r for r in revocation_list(store).entries}
    finally:
        store.close()
    if not rows:
        out.print("No notices published yet.")
        return
    table = Table("notice", "model", "release", "published", "status")
    for row in rows:
        r = revoked.get(row.id)
        status = f"[red]revoked {r.revoked_at:%Y-%m-%d}[/]: {r.reason}" if r else "valid"
        table.add_row(row.id, row.model_name, row.decided_release, f"{row.published_at:%Y-%m-%d}", status)
    out.print(table)


@notice_app.command("revoke")
@friendly_errors
def revoke(
    notice_id: Annotated[str, typer.Argument(help="The notice id (or a unique prefix).")],
    reason: Annotated[str, typer.Option("--reason", help="Why: published in the revocation list.")],
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help=f"Where to write the signed list (default: notices/{REVOCATIONS_FILE} in home)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Revoke a published notice (approver or admin) and re-sign the revocation list."""
    from weighbridge.notice import sign_revocations, write_envelope
    from weighbridge.services.audit import record_as
    from weighbridge.services.identity import current_actor
    from weighbridge.services.orgkey import organisation_signer
    from weighbridge.store.notice_schema import find_notice, revocation_list, revoke_notice
    from weighbridge.workflow.states import Role

    store = open_store(db)
    try:
        row = find_notice(store, notice_id)
        actor = current_actor(store, err.print)
        if not (actor.has(Role.APPROVER) or actor.has(Role.ADMIN)):
            raise WeighbridgeError(f"{actor.name} may not revoke notices", "Ask an approver or an admin")
        revoked = revoke_notice(store, row.id, reason, actor.name)
        envelope = sign_revocations(revocation_list(store), organisation_signer(notice=err.print))
        path = write_envelope(envelope, out_path or default_revocations_path())
        record_as(
            store,
            actor,
            "notice.revoke",
            row.id,
            {"reason": revoked.reason, "revocation_list_sha256": _sha256(envelope.to_bytes())},
        )
    finally:
        store.close()
    out.print(f"Notice {row.id} revoked. Signed revocation list: {path}")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _trusted_keys(paths: list[Path] | None) -> list[bytes]:
    from weighbridge.notice import load_public_key

    if paths:
        return [load_public_key(p) for p in paths]
    from weighbridge.services.orgkey import PUBLIC_FILE
    from weighbridge.store.db import default_home

    local = default_home() / PUBLIC_FILE
    if not local.exists():
        raise WeighbridgeError(
            "No trusted key to verify against",
            "Give the publishing organisation's public key with --key FILE",
        )
    return [load_public_key(local)]


def _revocations(path: Path | None) -> Path | None:
    if path is not None:
        return path
    local = default_revocations_path()
    return local if local.exists() else None


def _verified(path: Path, key: list[Path] | None) -> NoticeContent:
    from weighbridge.notice import verify_notice

    result = verify_notice(path, trusted_keys=_trusted_keys(key))
    if result.notice is None or not result.ok:
        reasons = "; ".join(p.message for p in result.problems)
        raise WeighbridgeError(f"{path} does not verify: {reasons}", "Check the file and the --key")
    return result.notice
