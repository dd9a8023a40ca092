"""Intake: a model enters weighbridge — fingerprinted, inspected, recorded, taken into custody.

Order matters for "bad input loses nothing": everything that can fail on the user's input (the card,
the inspection, the custody key) runs before the first write; if encrypting into custody fails
half-way, the submission and its findings are removed again, so the store never holds a submission
whose weights are not in custody.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from weighbridge.domain import Finding, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.inspection import inspect_path
from weighbridge.intake.custody import KeyFile, KeySource
from weighbridge.intake.manifest import model_files
from weighbridge.intake.signature import verify_model_signature
from weighbridge.services.audit import record
from weighbridge.services.custody import CustodyVault, default_custody_root, key_source_from_env, submitted_files
from weighbridge.services.identity import current_actor
from weighbridge.store.db import Store, default_home
from weighbridge.store.schema import SubmissionRow

LOCAL_KEY_FILE = "custody.key"
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Intake:
    submission: SubmissionRow
    model: ModelRef
    findings: tuple[Finding, ...]
    in_custody: bool


def local_key_source(notice: Callable[[str], None], *, create: bool = True, interactive: bool = False) -> KeySource:
    """The custody key: WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE when set; otherwise a key
    file in WEIGHBRIDGE_HOME, created on first use when `create` (intake) — commands that only read
    custody never create one; with `interactive` they may ask for a passphrase instead.

    The fallback keeps the quick path (one local user, no set-up) encrypted at rest without asking
    for anything; a team or agency sets a passphrase or a key file held elsewhere, which is what
    protects the weights if the data directory leaks.
    """
    if os.environ.get("WEIGHBRIDGE_PASSPHRASE") or os.environ.get("WEIGHBRIDGE_KEY_FILE"):
        return key_source_from_env(interactive=False)
    path = default_home() / LOCAL_KEY_FILE
    if not path.exists() and not create:
        return key_source_from_env(interactive=interactive)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        notice(
            f"Created a custody key at {path} (encrypts submitted weights at rest). Keep it private; "
            "teams should set WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE instead."
        )
    return KeyFile(path)


def open_vault(store: Store, notice: Callable[[str], None]) -> CustodyVault:
    return CustodyVault(store, default_custody_root(), local_key_source(notice))


def read_documents(docs: Path) -> list[tuple[str, bytes]]:
    """Every file under `docs` (or `docs` itself), relative path and bytes; read before any write."""
    if not docs.exists():
        raise WeighbridgeError(f"No such documents directory: {docs}", "Give the folder with the safety documentation")
    files = [docs] if docs.is_file() else model_files(docs)
    out = []
    for f in files:
        size = f.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise WeighbridgeError(
                f"Document {f} is {size / 1e6:.0f} MB, over the {MAX_DOCUMENT_BYTES // 2**20} MiB limit",
                "Hand in documents, not data sets: split or compress it",
            )
        out.append((f.name if docs.is_file() else f.relative_to(docs).as_posix(), f.read_bytes()))
    return out


def inspect_model(
    model: ModelRef,
    card: Path | None = None,
    base: Path | None = None,
    tokens: float | None = None,
    public_key: Path | None = None,
) -> list[Finding]:
    """Static findings for a model with files (an endpoint has nothing to inspect), including the
    check of an OpenSSF model-signing signature shipped with the files (`model.sig`)."""
    if model.path is None:
        return []
    path = Path(model.path)
    findings = list(inspect_path(path, card=card, base=base, declared_tokens=tokens).findings)
    findings.extend(verify_model_signature(path, public_key=public_key).findings)
    return findings


def take_in(
    store: Store,
    model: ModelRef,
    *,
    vault: CustodyVault | None,
    card: Path | None = None,
    base: Path | None = None,
    tokens: float | None = None,
    public_key: Path | None = None,
    docs: Path | None = None,
) -> Intake:
    """Submit `model`: inspect, record the submission and its findings, deposit its files."""
    if card is not None and not card.is_file():
        raise WeighbridgeError(f"No such model card: {card}", "Give the path of the model card (Markdown)")
    if base is not None and not base.exists():
        raise WeighbridgeError(f"No such base model: {base}", "Give the path of the declared base model")
    card_text = card.read_text(encoding="utf-8", errors="replace") if card else None
    documents = read_documents(docs) if docs is not None else []
    findings = inspect_model(model, card, base, tokens, public_key)
    custody = vault is not None and model.path is not None
    if custody:
        assert vault is not None
        vault.check_key()  # a wrong passphrase stops here, before anything is written
    current_actor(store)  # so does a wrong user key or passphrase: every write below is signed by its user
    source = model.path or (model.endpoint.base_url if model.endpoint else "")
    row = store.add_submission(model, source=source, card_text=card_text)
    try:
        store.add_findings(row.id, "inspection", findings)
        store.add_documents(row.id, documents)
        if custody:
            assert vault is not None
            vault.deposit(row.id, submitted_files(row))
    except BaseException:
        store.remove_submission(row.id)
        raise
    record(store, "submission", row.id, submission_evidence(row, documents, custody))
    record(store, "findings", row.id, {"source": "inspection", "findings": [asdict(f) for f in findings]})
    return Intake(row, model, tuple(findings), custody)


def submission_evidence(row: SubmissionRow, documents: list[tuple[str, bytes]], in_custody: bool) -> dict[str, Any]:
    """What the ledger binds for a submission: the model's digest and manifest, the documents' digests."""
    return {
        "name": row.name,
        "format": row.format,
        "digest": row.digest,
        "manifest": json.loads(row.manifest_json),
        "documents": {path: hashlib.sha256(data).hexdigest() for path, data in documents},
        "in_custody": in_custody,
    }
