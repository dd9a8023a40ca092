"""Verify a notice offline: the one entry point, and a result that names every problem.

Like sigstore-python's `Verifier.verify`, there is no partial success: `ok` is true only when the
envelope is intact and canonical, signed by a trusted key, not revoked and (when the files are
given) every model file matches. Each problem says which check failed and, for model files, which
file — so "invalid" always comes with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from weighbridge.domain import Manifest
from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import key_id_of
from weighbridge.notice.dsse import Envelope, EnvelopeError
from weighbridge.notice.revocation import REVOCATIONS_PAYLOAD_TYPE, Revocation, RevocationList
from weighbridge.notice.statement import NOTICE_PAYLOAD_TYPE, NoticeContent, Statement, StatementError

__all__ = ["NoticeProblem", "NoticeVerification", "check_model_files", "read_revocations", "verify_notice"]

ProblemKind = Literal[
    "damaged",  # not a canonical DSSE envelope: edited or corrupted
    "signature",  # no trusted signature: content or signature changed, or signed by another key
    "payload",  # signed, but not a well-formed notice
    "revoked",
    "revocations",  # the revocation list itself cannot be trusted
    "file_mismatch",
    "file_missing",
    "file_extra",
]


@dataclass(frozen=True)
class NoticeProblem:
    kind: ProblemKind
    message: str
    file: str | None = None


@dataclass(frozen=True)
class NoticeVerification:
    """What verification found. `notice` is set only once the signature is trusted."""

    problems: tuple[NoticeProblem, ...]
    notice: NoticeContent | None = None
    key_id: str | None = None
    revocation_checked: bool = False
    model_checked: bool = False
    revocation: Revocation | None = field(default=None)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_notice(
    path: Path,
    *,
    trusted_keys: Sequence[bytes],
    revocations: Path | RevocationList | None = None,
    model_path: Path | None = None,
) -> NoticeVerification:
    """Check a notice file against trusted organisation keys, a revocation list and the model files.

    Args:
        path: the notice (a DSSE envelope file as `write_notice` writes it).
        trusted_keys: raw Ed25519 public keys of organisations whose notices are trusted. The key
            embedded in the notice is never trusted on its own word.
        revocations: a signed revocation list file (checked with the same trusted keys) or an
            already verified list; None skips the check and `revocation_checked` says so.
        model_path: the model file or directory to check against the notice's per-file digests.

    Raises:
        WeighbridgeError: only when `path`, `revocations` or `model_path` does not exist; anything
            wrong with their content is a problem in the result.
    """
    data = _read(path, "notice")
    try:
        envelope = Envelope.from_bytes(data)
    except EnvelopeError as exc:
        return NoticeVerification((NoticeProblem("damaged", f"The notice file is damaged or was edited: {exc}"),))
    if envelope.payload_type != NOTICE_PAYLOAD_TYPE:
        return NoticeVerification(
            (
                NoticeProblem(
                    "payload", f"Not a notice: payload type {envelope.payload_type!r}, not {NOTICE_PAYLOAD_TYPE}"
                ),
            )
        )
    key_id, problem = _trusted_signer(envelope, trusted_keys, "notice")
    if problem is not None:
        return NoticeVerification((problem,))
    try:
        statement = Statement.from_payload(envelope.payload)
        notice = statement.content()
    except StatementError as exc:
        return NoticeVerification((NoticeProblem("payload", f"The signed payload is not a valid notice: {exc}"),))
    problems: list[NoticeProblem] = _consistency(statement, notice)
    if notice.reviewer_key_id != key_id:
        problems.append(NoticeProblem("payload", "The notice names a reviewer key other than the one that signed it"))

    revocation = None
    revocation_checked = False
    if revocations is not None:
        listing = revocations if isinstance(revocations, RevocationList) else None
        if isinstance(revocations, Path):
            listing, rev_problem = read_revocations(revocations, trusted_keys)
            if rev_problem is not None:
                problems.append(rev_problem)
        if listing is not None:
            revocation_checked = True
            revocation = listing.find(notice.notice_id)
            if revocation is not None:
                problems.append(
                    NoticeProblem(
                        "revoked",
                        f"The notice was revoked on {revocation.revoked_at:%Y-%m-%d %H:%M} UTC: {revocation.reason}",
                    )
                )

    if model_path is not None:
        problems.extend(check_model_files(notice, model_path))
    return NoticeVerification(tuple(problems), notice, key_id, revocation_checked, model_path is not None, revocation)


def read_revocations(path: Path, trusted_keys: Sequence[bytes]) -> tuple[RevocationList | None, NoticeProblem | None]:
    """A revocation list file, accepted only when a trusted key signed it."""
    data = _read(path, "revocation list")
    try:
        envelope = Envelope.from_bytes(data)
    except EnvelopeError as exc:
        return None, NoticeProblem("revocations", f"The revocation list is damaged or was edited: {exc}")
    if envelope.payload_type != REVOCATIONS_PAYLOAD_TYPE:
        return None, NoticeProblem("revocations", f"{path} is not a revocation list ({envelope.payload_type!r})")
    _, problem = _trusted_signer(envelope, trusted_keys, "revocation list")
    if problem is not None:
        return None, NoticeProblem("revocations", problem.message)
    try:
        return RevocationList.from_payload(envelope.payload), None
    except (ValueError, KeyError, TypeError) as exc:
        return None, NoticeProblem("revocations", f"The revocation list is malformed: {exc}")


def check_model_files(notice: NoticeContent, model_path: Path) -> list[NoticeProblem]:
    """Per-file comparison of the files at `model_path` with the notice: changed, missing, extra."""
    from weighbridge.intake.manifest import manifest_of

    if not model_path.exists():
        raise WeighbridgeError(f"No such model file or directory: {model_path}", "Give the path of the model files")
    actual = {f.path: f for f in manifest_of(model_path).files}
    expected = {f.path: f for f in notice.files}
    problems: list[NoticeProblem] = []
    for name in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(name), actual.get(name)
        if got is None:
            problems.append(NoticeProblem("file_missing", f"Model file {name} named in the notice is missing", name))
        elif want is None:
            problems.append(NoticeProblem("file_extra", f"Model file {name} is not covered by the notice", name))
        elif (got.sha256, got.bytes) != (want.sha256, want.bytes):
            problems.append(
                NoticeProblem(
                    "file_mismatch",
                    f"Model file {name} does not match its digest in the notice "
                    f"(sha256 {got.sha256[:16]}…, expected {want.sha256[:16]}…)",
                    name,
                )
            )
    if not problems and Manifest(tuple(actual.values())).digest != notice.manifest_digest:
        problems.append(NoticeProblem("file_mismatch", "The model files do not add up to the notice's manifest digest"))
    return problems


def _consistency(statement: Statement, notice: NoticeContent) -> list[NoticeProblem]:
    """A signed notice whose parts disagree was issued wrongly; say so rather than pick one part."""
    problems = []
    files = sorted((f.path, f.sha256) for f in notice.files)
    if sorted(statement.subject) != files:
        problems.append(NoticeProblem("payload", "The notice's subject list and its model files disagree"))
    if statement.predicate["model"].get("manifest_digest") != notice.manifest_digest:
        problems.append(NoticeProblem("payload", "The notice's manifest digest does not match its own file list"))
    return problems


def _trusted_signer(
    envelope: Envelope, trusted_keys: Sequence[bytes], what: str
) -> tuple[str | None, NoticeProblem | None]:
    if not trusted_keys:
        return None, NoticeProblem("signature", f"No trusted key to check the {what} against")
    trusted = {key_id_of(k): k for k in trusted_keys}
    named = [s.keyid for s in envelope.signatures if s.keyid in trusted]
    for keyid in named:
        if envelope.verified_by(trusted[keyid], keyid):
            return keyid, None
    if named:
        return None, NoticeProblem(
            "signature",
            f"Bad signature: the {what}'s content or its signature was changed after it was signed",
        )
    signers = ", ".join(s.keyid[:16] for s in envelope.signatures) or "nobody"
    return None, NoticeProblem(
        "signature",
        f"The {what} is signed by {signers}, which is not a trusted key (wrong --key, or not this organisation's)",
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise WeighbridgeError(f"No such {what} file: {path}", f"Give the path of the {what}") from None
    except OSError as exc:
        raise WeighbridgeError(
            f"Cannot read the {what} {path}: {exc.strerror}", "Check the path and permissions"
        ) from None
