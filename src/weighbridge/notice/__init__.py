"""Signed public notices: build, sign, write, verify, revoke, and render for a model card.

A notice is an in-toto Statement v1 (subject: the model files by sha256; predicate type
`https://weighbridge.dev/notice/v1`) in a DSSE envelope signed with the organisation's Ed25519 key,
the format Sigstore and OpenSSF model-signing use. Typical use::

    statement = build_notice(content)
    envelope = sign_notice(statement, organisation_signer())
    path = write_notice(envelope, out_dir)
    result = verify_notice(path, trusted_keys=[public_key], revocations=rev_path, model_path=model)
"""

from __future__ import annotations

from weighbridge.ledger.signing import Signer
from weighbridge.notice.dsse import Envelope, EnvelopeError, EnvelopeSignature, pae, sign_envelope
from weighbridge.notice.files import notice_filename, write_envelope, write_notice
from weighbridge.notice.keys import load_public_key, public_key_pem
from weighbridge.notice.report import grades_from_report, suites_from_report
from weighbridge.notice.revocation import REVOCATIONS_PAYLOAD_TYPE, Revocation, RevocationList, sign_revocations
from weighbridge.notice.snippet import badge_line, model_index, snippet
from weighbridge.notice.statement import (
    NOTICE_PAYLOAD_TYPE,
    NOTICE_PREDICATE_TYPE,
    GradeRecord,
    NoticeContent,
    ReviewDates,
    RunRecord,
    Statement,
    StatementError,
    SuiteRecord,
    build_notice,
)
from weighbridge.notice.verify import NoticeProblem, NoticeVerification, read_revocations, verify_notice

__all__ = [
    "NOTICE_PAYLOAD_TYPE",
    "NOTICE_PREDICATE_TYPE",
    "REVOCATIONS_PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeError",
    "EnvelopeSignature",
    "GradeRecord",
    "NoticeContent",
    "NoticeProblem",
    "NoticeVerification",
    "ReviewDates",
    "Revocation",
    "RevocationList",
    "RunRecord",
    "Statement",
    "StatementError",
    "SuiteRecord",
    "badge_line",
    "build_notice",
    "grades_from_report",
    "load_public_key",
    "model_index",
    "notice_filename",
    "pae",
    "public_key_pem",
    "read_notice",
    "read_revocations",
    "sign_envelope",
    "sign_notice",
    "sign_revocations",
    "snippet",
    "suites_from_report",
    "verify_notice",
    "write_envelope",
    "write_notice",
]


def sign_notice(statement: Statement, signer: Signer) -> Envelope:
    """The statement in a DSSE envelope signed by `signer` (the organisation key)."""
    return sign_envelope(statement.payload(), NOTICE_PAYLOAD_TYPE, signer)


def read_notice(envelope: Envelope) -> NoticeContent:
    """The content of an envelope WITHOUT checking its signature (for display after `verify_notice`)."""
    return Statement.from_payload(envelope.payload).content()
