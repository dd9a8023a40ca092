"""Signer policy at submit: a Sigstore keyless bundle is taken in only when it names the signer the
reviewer expects (`--identity`/`--issuer`, or the lab's `[signers."LAB"]` in config.toml), refused
before anything is written otherwise; the ledger names who signed every submission.

The keyless bundle is made here with a self-signed certificate carrying what Fulcio puts in one (a
SAN e-mail and the OIDC-issuer extension), so the identity check is exercised offline; its
cryptographic check then fails, since no Sigstore trust root vouches for a home-made certificate.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cli_runner import Run
from tests.cli_runner import wb as run_cli
from weighbridge.errors import WeighbridgeError
from weighbridge.intake import signature as signature_module
from weighbridge.intake.resolve import resolve_model
from weighbridge.intake.signature import verify_model_signature
from weighbridge.services import ledger
from weighbridge.services.intake import SignerRequirement, take_in
from weighbridge.store.db import Store

SIGNER = "release@acme.example"
ISSUER = "https://accounts.acme.example"
OIDC_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"  # Fulcio's OIDC-issuer extension (DER UTF8String)
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def wb(*args: str) -> Run:
    return run_cli(*args, columns=400)


def tiny_model(where: Path) -> Path:
    where.mkdir()
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    (where / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1, 2, 3, 4))
    (where / "config.json").write_text(json.dumps({"architectures": ["TinyForCausalLM"], "hidden_size": 2}))
    return where


def keyless_sign(model: Path, email: str = SIGNER, issuer: str = ISSUER) -> None:
    """A v0.3 Sigstore bundle as `model_signing sign sigstore` writes it, minus the transparency-log
    entry and with a self-signed certificate in place of Fulcio's."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    raw_issuer = issuer.encode()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-fulcio")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(OIDC_ISSUER_V2), bytes([0x0C, len(raw_issuer)]) + raw_issuer
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    resources = [
        {"name": p.name, "algorithm": "sha256", "digest": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(model.iterdir())
        if p.name != "model.sig"
    ]
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model.name, "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": []},
            "resources": resources,
        },
    }
    payload = json.dumps(statement).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(key.sign(pae, ec.ECDSA(hashes.SHA256()))).decode()}],
        },
    }
    (model / "model.sig").write_text(json.dumps(bundle))


def key_sign(model: Path, where: Path) -> tuple[Path, str]:
    """Sign with a fresh EC key through model_signing; the public key and its fingerprint."""
    from model_signing import signing

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = where / "lab.pem", where / "lab.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    new_config: Any = signing.Config  # the library ships no type hints
    new_config().use_elliptic_key_signer(private_key=private).sign(model, model / "model.sig")
    return public, "sha256:" + hashlib.sha256(spki).hexdigest()


def counts(home: Path) -> list[int]:
    """Submissions, ledger entries and custody objects in the default store."""
    with sqlite3.connect(home / "weighbridge.db") as conn:
        return [
            int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("submissions", "ledger_entries", "custody_objects")
        ]


def submission_evidence(home: Path) -> dict[str, Any]:
    store = Store(f"sqlite:///{home / 'weighbridge.db'}")
    try:
        entries = [e for e in ledger.read_entries(store) if e.action == "submission"]
    finally:
        store.close()
    assert entries and entries[-1].evidence_json
    evidence: dict[str, Any] = json.loads(entries[-1].evidence_json)
    return evidence


def inspection_findings(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "weighbridge.db") as conn:
        rows = conn.execute("SELECT kind, severity FROM findings WHERE kind LIKE 'signature.%'").fetchall()
    return [(kind, severity) for kind, severity in rows]


def write_config(home: Path, lab: str = "Acme Labs") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[signers."{lab}"]\nidentity = "{SIGNER}"\nissuer = "{ISSUER}"\n')


def test_keyless_bundle_without_an_expected_signer_is_refused_and_nothing_is_written(
    tmp_path: Path, isolated_home: Path
) -> None:
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)

    proc = wb("submit", str(signed))
    assert proc.returncode == 1
    assert f"names signer {SIGNER} (issuer {ISSUER})" in proc.stderr
    assert f"--identity {SIGNER} --issuer {ISSUER}" in proc.stderr
    assert '[signers."LAB"]' in proc.stderr and "--lab" in proc.stderr
    assert not isolated_home.exists(), "a refused first submission creates no store and no custody key"

    # With a store in use: an unsigned model goes in (its ledger entry says so), the keyless one does not.
    proc = wb("submit", str(tiny_model(tmp_path / "unsigned")))
    assert proc.returncode == 0, proc.stderr
    assert submission_evidence(isolated_home)["signature"] is None
    before = counts(isolated_home)
    assert before[0] == 1 and before[1] > 0 and before[2] > 0
    proc = wb("submit", str(signed), "--lab", "Acme Labs")
    assert proc.returncode == 1 and SIGNER in proc.stderr and '[signers."Acme Labs"]' in proc.stderr
    assert counts(isolated_home) == before


def test_take_in_itself_refuses_before_the_first_write(tmp_path: Path, isolated_home: Path) -> None:
    """The service's own guarantee, for callers other than the CLI (which checks earlier still)."""
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)
    store = Store(f"sqlite:///{tmp_path / 'direct.db'}")
    try:
        with pytest.raises(WeighbridgeError, match=re.escape(f"names signer {SIGNER}")):
            take_in(store, resolve_model(str(signed)), vault=None, signer=SignerRequirement(lab="Acme Labs"))
        with pytest.raises(
            WeighbridgeError, match=re.escape("not by the expected signer for Acme Labs other@acme.example")
        ):
            required = SignerRequirement("other@acme.example", ISSUER, "Acme Labs")
            take_in(store, resolve_model(str(signed)), vault=None, signer=required)
        assert list(store.list_submissions()) == []
        assert ledger.read_entries(store) == []
    finally:
        store.close()


def test_another_identity_or_issuer_is_refused_naming_both(tmp_path: Path, isolated_home: Path) -> None:
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)

    proc = wb("submit", str(signed), "--identity", "other@acme.example", "--issuer", ISSUER)
    assert proc.returncode == 1
    assert f"signed by {SIGNER} (issuer {ISSUER})" in proc.stderr
    assert f"expected signer other@acme.example (issuer {ISSUER})" in proc.stderr

    proc = wb("submit", str(signed), "--identity", SIGNER, "--issuer", "https://issuer.elsewhere.example")
    assert proc.returncode == 1
    assert f"(issuer {ISSUER})" in proc.stderr and "https://issuer.elsewhere.example" in proc.stderr

    write_config(isolated_home)  # the lab's entry matches, but an explicit flag wins over it
    proc = wb("submit", str(signed), "--lab", "Acme Labs", "--identity", "other@acme.example")
    assert proc.returncode == 1
    assert f"expected signer for Acme Labs other@acme.example (issuer {ISSUER})" in proc.stderr
    assert not (isolated_home / "weighbridge.db").exists()


def test_the_labs_configured_signer_passes_the_identity_check_but_is_not_verified(
    tmp_path: Path, isolated_home: Path
) -> None:
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)
    write_config(isolated_home)

    proc = wb("submit", str(signed), "--lab", "Acme Labs")
    assert proc.returncode == 0, proc.stderr
    assert "Submission " in proc.stdout
    # Offline, against the Sigstore trust root, a home-made certificate (and no log entry) fails.
    findings = inspection_findings(isolated_home)
    assert findings == [("signature.invalid", "high")]
    evidence = submission_evidence(isolated_home)
    assert evidence["lab"] == "Acme Labs"
    assert evidence["signature"] == {
        "method": "sigstore",
        "signer": SIGNER,
        "issuer": ISSUER,
        "verified": False,
        "status": "failed",
    }


def test_the_library_refuses_another_identity_without_consulting_a_trust_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)

    def no_trust_root() -> str:
        raise AssertionError("the identity check must come before the trust root")

    monkeypatch.setattr(signature_module, "_offline_trust_config", no_trust_root)
    result = verify_model_signature(signed, identity="other@acme.example", oidc_issuer=ISSUER)
    assert (result.status, result.method, result.identity) == ("failed", "sigstore", None)
    assert [(f.kind, f.severity) for f in result.findings] == [("signature.invalid", "high")]
    assert SIGNER in result.findings[0].message and "other@acme.example" in result.findings[0].message


def test_a_key_signed_submission_names_the_key_fingerprint_in_the_ledger(tmp_path: Path, isolated_home: Path) -> None:
    model = tiny_model(tmp_path / "key-signed")
    public, fingerprint = key_sign(model, tmp_path)

    proc = wb("submit", str(model), "--public-key", str(public), "--lab", "Acme Labs")
    assert proc.returncode == 0, proc.stderr
    evidence = submission_evidence(isolated_home)
    assert evidence["signature"] == {"method": "key", "signer": fingerprint, "verified": True, "status": "verified"}
    assert evidence["lab"] == "Acme Labs"  # named without a config entry: recorded all the same


def test_the_quick_review_applies_the_same_signer_policy(tmp_path: Path, isolated_home: Path) -> None:
    signed = tiny_model(tmp_path / "keyless")
    keyless_sign(signed)
    proc = wb("review", str(signed), "--limit", "1", "--no-reference")
    assert proc.returncode == 1
    assert f"names signer {SIGNER} (issuer {ISSUER})" in proc.stderr
    assert not isolated_home.exists(), "refused before the store is opened"
    other = wb("review", str(signed), "--limit", "1", "--no-reference", "--identity", "x@y.example", "--issuer", ISSUER)
    assert other.returncode == 1 and "not by the expected signer" in other.stderr
    assert not isolated_home.exists()
