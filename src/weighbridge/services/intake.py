"""Intake: a model enters weighbridge — fingerprinted, inspected, recorded, taken into custody.

Order matters for "bad input loses nothing": everything that can fail on the user's input (the card,
the inspection, the custody key) runs before the first write; if encrypting into custody fails
half-way, the submission and its findings are removed again, so the store never holds a submission
whose weights are not in custody.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from weighbridge.config import config_path, load_config
from weighbridge.domain import Finding, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.inspection import inspect_path
from weighbridge.intake.custody import KeySource
from weighbridge.intake.manifest import model_files
from weighbridge.intake.signature import ClaimedSigner, SignatureResult, claimed_signer, verify_model_signature
from weighbridge.services.audit import record_as
from weighbridge.services.custody import CustodyVault, default_custody_root, local_key, submitted_files
from weighbridge.services.identity import Actor, current_actor
from weighbridge.store.db import Store
from weighbridge.store.schema import SubmissionRow

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Intake:
    submission: SubmissionRow
    model: ModelRef
    findings: tuple[Finding, ...]
    in_custody: bool
    signature: SignatureResult | None = None


@dataclass(frozen=True)
class SignerRequirement:
    """Whom a Sigstore keyless signature must name, and the lab that submits.

    Anyone can obtain a keyless signature for their own e-mail address, so such a signature says
    something only once the reviewer has said whose it must be: the identity and OIDC issuer the lab
    declared. Without both, a keyless bundle is refused rather than recorded as "verified".
    """

    identity: str | None = None
    issuer: str | None = None
    lab: str | None = None


def signer_requirement(lab: str | None, identity: str | None, issuer: str | None) -> SignerRequirement:
    """Explicit `--identity`/`--issuer` over the lab's `[signers."LAB"]` entry in config.toml, field
    by field. The settings file is read only when a lab is named, so a submission that names none
    never fails on it."""
    lab = (lab or "").strip() or None
    configured = load_config().signers.get(lab) if lab else None
    return SignerRequirement(
        identity or (configured.identity if configured else None),
        issuer or (configured.issuer if configured else None),
        lab,
    )


def require_signer(path: Path, required: SignerRequirement) -> ClaimedSigner | None:
    """Refuse a Sigstore keyless signature the reviewer did not ask for, or one by someone else.

    Judged on the certificate's claim alone, before any cryptographic check, so the refusal is the
    same with or without network and trust roots; the check proper follows in the verification.
    Key and certificate signatures, and models without one, pass (their checks are findings).
    """
    claimed = claimed_signer(path)
    if claimed is None or claimed.method != "sigstore":
        return claimed
    found = f"{claimed.identity or 'no identity'} (issuer {claimed.issuer or 'none'})"
    if not required.identity or not required.issuer:
        lab = required.lab or "LAB"
        ident, iss = claimed.identity or "IDENTITY", claimed.issuer or "ISSUER"
        raise WeighbridgeError(
            f"{claimed.signature_file} is a Sigstore keyless signature; its certificate names signer {found}, "
            "but no expected signer identity and issuer were given, and anyone can obtain such a signature "
            "for their own identity",
            f"If that is the signer the lab declared, accept it with --identity {ident} --issuer {iss}, "
            f'or add [signers."{lab}"] with identity = "{ident}" and issuer = "{iss}" to {config_path()} '
            f'and submit with --lab "{lab}"',
        )
    if claimed.identity != required.identity or claimed.issuer != required.issuer:
        whose = f" for {required.lab}" if required.lab else ""
        raise WeighbridgeError(
            f"{claimed.signature_file} is signed by {found}, not by the expected signer{whose} "
            f"{required.identity} (issuer {required.issuer})",
            "Ask the lab who signed this model; submit it only with the signer the lab declared",
        )
    return claimed


def local_key_source(notice: Callable[[str], None], *, create: bool = True, interactive: bool = False) -> KeySource:
    """The custody key: WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE when set; otherwise the quick
    path's key file, kept outside WEIGHBRIDGE_HOME (see `services.custody.local_key`), created on
    first use when `create` (intake) — commands that only read custody never create one; with
    `interactive` they may ask for a passphrase instead.
    """
    return local_key(notice, create=create, interactive=interactive).source


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
    return inspect_and_verify(model, card, base, tokens, public_key)[0]


def inspect_and_verify(
    model: ModelRef,
    card: Path | None = None,
    base: Path | None = None,
    tokens: float | None = None,
    public_key: Path | None = None,
    signer: SignerRequirement | None = None,
) -> tuple[list[Finding], SignatureResult | None]:
    """`inspect_model`'s findings and the signature outcome they came from (None for an endpoint),
    which the ledger records as the signer. With `signer`, a Sigstore keyless bundle must name that
    signer (`require_signer`) or nothing is inspected; without it, any signer is recorded as found."""
    if model.path is None:
        return [], None
    path = Path(model.path)
    required = signer or SignerRequirement()
    if signer is not None:
        require_signer(path, signer)
    findings = list(inspect_path(path, card=card, base=base, declared_tokens=tokens).findings)
    result = verify_model_signature(
        path, public_key=public_key, identity=required.identity, oidc_issuer=required.issuer
    )
    findings.extend(result.findings)
    return findings, result


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
    signer: SignerRequirement | None = None,
    actor: Actor | None = None,
) -> Intake:
    """Submit `model`: inspect, record the submission and its findings, deposit its files.

    `signer` applies the signer policy to a Sigstore keyless signature (see `require_signer`); a
    refusal comes before the first write. Its `lab` is recorded with the submission. `actor` is who
    submits (the API's caller); default: the user this process acts as (the CLI's).
    """
    if card is not None and not card.is_file():
        raise WeighbridgeError(f"No such model card: {card}", "Give the path of the model card (Markdown)")
    if base is not None and not base.exists():
        raise WeighbridgeError(f"No such base model: {base}", "Give the path of the declared base model")
    card_text = card.read_text(encoding="utf-8", errors="replace") if card else None
    documents = read_documents(docs) if docs is not None else []
    findings, signature = inspect_and_verify(model, card, base, tokens, public_key, signer)
    custody = vault is not None and model.path is not None
    if custody:
        assert vault is not None
        vault.check_key()  # a wrong passphrase stops here, before anything is written
    # So does a wrong user key or passphrase: every write below is signed by its user.
    actor = actor or current_actor(store)
    source = model.path or (model.endpoint.base_url if model.endpoint else "")
    row = store.add_submission(model, source=source, card_text=card_text)
    try:
        store.add_findings(row.id, "inspection", findings)
        store.add_documents(row.id, documents)
        if custody:
            assert vault is not None
            vault.deposit(row.id, submitted_files(row), actor=actor)
    except BaseException:
        store.remove_submission(row.id)
        raise
    evidence = submission_evidence(
        row,
        documents,
        custody,
        lab=signer.lab if signer else None,
        signature=signature_evidence(signature, signer),
    )
    record_as(store, actor, "submission", row.id, evidence)
    record_as(store, actor, "findings", row.id, {"source": "inspection", "findings": [asdict(f) for f in findings]})
    return Intake(row, model, tuple(findings), custody, signature)


def submission_evidence(
    row: SubmissionRow,
    documents: list[tuple[str, bytes]],
    in_custody: bool,
    *,
    lab: str | None = None,
    signature: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the ledger binds for a submission: the model's digest and manifest, the documents'
    digests, who signed the weights (`signature_evidence`; null when unsigned) and, when named, the
    submitting lab, so the record says whose model this is and on whose signature it was taken."""
    evidence: dict[str, Any] = {
        "name": row.name,
        "format": row.format,
        "digest": row.digest,
        "manifest": json.loads(row.manifest_json),
        "documents": {path: hashlib.sha256(data).hexdigest() for path, data in documents},
        "in_custody": in_custody,
        "signature": signature,
    }
    if lab is not None:
        evidence["lab"] = lab
    return evidence


def signature_evidence(
    result: SignatureResult | None, signer: SignerRequirement | None = None
) -> dict[str, Any] | None:
    """The signer as the ledger keeps it: method, signer (key fingerprint, certificate subject, or
    Sigstore identity with its issuer) and whether that was proven. A Sigstore bundle only gets
    this far when its certificate names the required signer, so that is the one recorded; a claim
    that did not verify stays on file with `verified: false`."""
    if result is None or result.status == "absent":
        return None
    evidence: dict[str, Any] = {
        "method": result.method,
        "signer": result.identity,
        "verified": result.status == "verified",
        "status": result.status,
    }
    if result.method == "sigstore" and signer is not None and signer.identity and signer.issuer:
        evidence["signer"], evidence["issuer"] = signer.identity, signer.issuer
    return evidence
