"""Verify an OpenSSF model-signing signature (`model.sig`, a Sigstore bundle) over a model.

The lab signs its model with the `model_signing` tool (`model_signing sign key DIR ...`); the bundle
holds a DSSE envelope whose in-toto payload lists every file with its SHA-256. Verification has two
halves, both done by the `model_signing` library: the signature over the payload (a public key, an
X.509 chain, or Sigstore's Fulcio/Rekor trust root), then every file re-hashed and compared.

Whatever the signature file holds, this module returns a `SignatureResult`; the outcome is a
finding, never an exception. Only the reviewer's own inputs (a public key or certificate file that
does not exist or cannot be parsed) raise `WeighbridgeError`.

Keyless (Sigstore) bundles are checked offline against the Sigstore public-good trust root that
sigstore-python ships (or has cached from an earlier online update): the certificate chain to
Fulcio, the Rekor inclusion proof and signed entry timestamp. The signer's identity (e-mail or
workload URI and OIDC issuer) is read from the certificate and recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from weighbridge.domain import Finding
from weighbridge.errors import WeighbridgeError

SignatureStatus = Literal["verified", "failed", "absent", "unverifiable"]
SignatureMethod = Literal["key", "certificate", "sigstore"]

DEFAULT_SIGNATURE_NAME: Final = "model.sig"
# Fulcio certificate extensions carrying the OIDC issuer (v2 is DER UTF8String, v1 raw bytes).
_OIDC_ISSUER_V2: Final = "1.3.6.1.4.1.57264.1.8"
_OIDC_ISSUER_V1: Final = "1.3.6.1.4.1.57264.1.1"
_MISMATCH: Final = "Signature mismatch"


@dataclass(frozen=True)
class SignatureResult:
    """What the signature check concluded.

    `identity` names who signed, in a form a reviewer can compare with what the lab declared:
    `sha256:<hex>` of the public key (DER SubjectPublicKeyInfo, as `openssl pkey -pubin -outform DER
    | sha256sum` prints it) for key signatures, the certificate subject for certificate signatures,
    `<san> (issuer <oidc issuer>)` for Sigstore keyless signatures. It is filled in when the
    signature verified, and also when it failed or could not be checked if the bundle names a
    signer (marked as claimed, not proven, in the finding).
    """

    status: SignatureStatus
    method: SignatureMethod | None
    identity: str | None
    findings: tuple[Finding, ...]
    signature_file: str | None = None


@dataclass(frozen=True)
class ClaimedSigner:
    """Who a signature bundle says signed it, read from the bundle without verifying anything.

    A signer policy is applied to this claim before any cryptographic check, so that refusing the
    wrong signer never depends on the network or on which Sigstore trust root happens to be cached.
    `identity` is the certificate's e-mail or URI for Sigstore keyless bundles, the certificate
    subject for certificate bundles, and None for key bundles (a key names no one); `issuer` is the
    OIDC issuer of a Sigstore certificate.
    """

    method: SignatureMethod
    identity: str | None
    issuer: str | None
    signature_file: str


def claimed_signer(model_path: Path, signature: Path | None = None) -> ClaimedSigner | None:
    """The signer the model's bundle claims; None when there is no signature or it cannot be read
    (`verify_model_signature` reports those as findings)."""
    sig_path = signature if signature is not None else find_signature(model_path.resolve())
    if sig_path is None or not sig_path.is_file():
        return None
    try:
        bundle = _parse_bundle(sig_path)
    except Exception:  # malformed: the verification turns it into a finding, never a crash
        return None
    if bundle.method == "sigstore":
        return ClaimedSigner("sigstore", bundle.san, bundle.issuer, _name(sig_path))
    return ClaimedSigner(bundle.method, bundle.claimed_identity, None, _name(sig_path))


def find_signature(model_path: Path) -> Path | None:
    """The signature that travels with a model: `DIR/model.sig` for a directory; `FILE.sig`, else
    `model.sig` beside it, for a single file."""
    if model_path.is_dir():
        candidates = [model_path / DEFAULT_SIGNATURE_NAME]
    else:
        candidates = [model_path.with_name(model_path.name + ".sig"), model_path.parent / DEFAULT_SIGNATURE_NAME]
    return next((c for c in candidates if c.is_file()), None)


def verify_model_signature(
    model_path: Path,
    *,
    signature: Path | None = None,
    public_key: Path | None = None,
    certificate: Path | None = None,
    identity: str | None = None,
    oidc_issuer: str | None = None,
) -> SignatureResult:
    """Verify the model-signing signature of a model file or directory, offline.

    Args:
        model_path: the model directory or single file that was signed. For a directory every file
            under it must be covered by the signature: an added, missing or changed file fails
            (the library's strict default, `ignore_unsigned_files=False`). Paths the signer chose to
            ignore (recorded, and signed, in the bundle) and git metadata stay ignored.
        signature: the bundle; by default `model.sig` found by `find_signature`. When it lies
            inside the model directory it is itself excluded from the comparison, whether or not
            the signer excluded it (the `model_signing` CLI does; its Python API does not).
        public_key: PEM public key (EC P-256/P-384/P-521) for a bundle signed with
            `model_signing sign key`. Without it such a bundle is `unverifiable`.
        certificate: PEM file with the CA certificate(s) to trust for a bundle signed with
            `model_signing sign certificate` (the signing certificate travels in the bundle).
            Without it the library falls back to the system roots (`certifi`), which a lab's
            private CA is not part of.
        identity: for a Sigstore keyless bundle, the signer identity to require (e-mail or URI).
            Without it any identity passes and the one in the certificate is recorded. A
            certificate naming another identity fails before any cryptographic check.
        oidc_issuer: the OIDC issuer to require with `identity` (defaults to the certificate's);
            a certificate naming another issuer fails likewise.

    Returns:
        The outcome; `findings` carries exactly one of `signature.absent`, `signature.verified`,
        `signature.unverifiable`, `signature.malformed`, or one or more `signature.invalid`
        (one per file that does not match, when the mismatch is in the files).

    Raises:
        WeighbridgeError: `public_key` or `certificate` is missing or not a usable PEM file.
    """
    model_path = model_path.resolve()
    if public_key is not None:
        _require_file(public_key, "public key (PEM)")
    if certificate is not None:
        _require_file(certificate, "CA certificate (PEM)")
    sig_path = signature if signature is not None else find_signature(model_path)
    if sig_path is None:
        return SignatureResult(
            "absent",
            None,
            None,
            (
                Finding(
                    "signature.absent",
                    "info",
                    "No model-signing signature (model.sig) found; the weights' origin is not "
                    "cryptographically attested",
                    _name(model_path),
                ),
            ),
        )
    sig_path = sig_path.resolve()
    sig_name = _name(sig_path)
    if not sig_path.is_file():
        return _malformed(sig_name, "The signature file does not exist or is not a regular file")
    try:
        bundle = _parse_bundle(sig_path)
    except _Malformed as exc:
        return _malformed(sig_name, str(exc))
    except Exception as exc:  # a defect the structural checks did not foresee: still malformed, never fatal
        return _malformed(sig_name, f"{type(exc).__name__}: {exc}")

    if bundle.method == "key":
        return _verify_key(model_path, sig_path, sig_name, bundle, public_key)
    if bundle.method == "certificate":
        return _verify_certificate(model_path, sig_path, sig_name, bundle, certificate)
    return _verify_sigstore(model_path, sig_path, sig_name, bundle, identity, oidc_issuer)


# --- the three methods ---------------------------------------------------------------------------


def _verify_key(
    model_path: Path, sig_path: Path, sig_name: str, bundle: _Bundle, public_key: Path | None
) -> SignatureResult:
    if public_key is None:
        hint = bundle.key_hint or "not recorded"
        return SignatureResult(
            "unverifiable",
            "key",
            None,
            (
                Finding(
                    "signature.unverifiable",
                    "medium",
                    "Signed with a private key, but no public key was given to check it against; ask the lab "
                    "for its public key (PEM) and verify with it",
                    sig_name,
                    evidence=f"sha256 of the signer's PEM public key, as the bundle records it: {hint}",
                ),
            ),
            sig_name,
        )
    key_identity = _key_identity(public_key)

    def configure(config: Any) -> Any:
        return config.use_elliptic_key_verifier(public_key=public_key)

    return _run(model_path, sig_path, sig_name, bundle, "key", key_identity, configure)


def _verify_certificate(
    model_path: Path, sig_path: Path, sig_name: str, bundle: _Bundle, certificate: Path | None
) -> SignatureResult:
    chain = [certificate] if certificate is not None else []

    def configure(config: Any) -> Any:
        return config.use_certificate_verifier(certificate_chain=chain)

    return _run(model_path, sig_path, sig_name, bundle, "certificate", bundle.claimed_identity, configure)


def _verify_sigstore(
    model_path: Path,
    sig_path: Path,
    sig_name: str,
    bundle: _Bundle,
    identity: str | None,
    oidc_issuer: str | None,
) -> SignatureResult:
    if (identity and bundle.san != identity) or (oidc_issuer and bundle.issuer != oidc_issuer):
        # Checked on the certificate's claim first: the refusal must not hinge on a trust root.
        required = f"{identity or bundle.san} (issuer {oidc_issuer or bundle.issuer})"
        return SignatureResult(
            "failed",
            "sigstore",
            None,
            (
                Finding(
                    "signature.invalid",
                    "high",
                    f"Sigstore keyless signature by {bundle.claimed_identity or 'an unnamed signer'}, "
                    f"not by the required signer {required}",
                    sig_name,
                ),
            ),
            sig_name,
        )
    want_identity = identity or bundle.san
    want_issuer = oidc_issuer or bundle.issuer
    online = (
        f"model_signing verify sigstore {_name(model_path)} --signature {sig_name} "
        f"--identity {want_identity or 'SIGNER'} --identity_provider {want_issuer or 'ISSUER'}"
    )
    if not want_identity or not want_issuer:
        return SignatureResult(
            "unverifiable",
            "sigstore",
            bundle.claimed_identity,
            (
                Finding(
                    "signature.unverifiable",
                    "medium",
                    "Sigstore keyless signature whose certificate names no signer identity or OIDC issuer; "
                    f"verify it with an explicit identity where Sigstore is reachable: {online}",
                    sig_name,
                ),
            ),
            sig_name,
        )
    try:
        trust_config = _offline_trust_config()
    except Exception as exc:  # TUF cache errors, an unexpected sigstore layout: never fatal
        return SignatureResult(
            "unverifiable",
            "sigstore",
            bundle.claimed_identity,
            (
                Finding(
                    "signature.unverifiable",
                    "medium",
                    "Sigstore keyless signature: no offline Sigstore trust root is available here, and checking "
                    "the certificate and transparency log online needs the network. Verify it where Sigstore "
                    f"is reachable: {online}",
                    sig_name,
                    evidence=f"{type(exc).__name__}: {exc}; claimed signer: {bundle.claimed_identity}",
                ),
            ),
            sig_name,
        )
    with tempfile.TemporaryDirectory(prefix="weighbridge-sigstore-") as tmp:
        trust_path = Path(tmp) / "trust_config.json"
        trust_path.write_text(trust_config, encoding="utf-8")

        def configure(config: Any) -> Any:
            return config.use_sigstore_verifier(
                identity=want_identity, oidc_issuer=want_issuer, trust_config=trust_path
            )

        signer = f"{want_identity} (issuer {want_issuer})"
        return _run(
            model_path,
            sig_path,
            sig_name,
            bundle,
            "sigstore",
            signer,
            configure,
            caveat=(
                "Checked offline against the Sigstore public-good trust root shipped with (or cached by) "
                "sigstore-python; if the signature is newer than that trust root, re-check online: " + online
            ),
        )


def _run(
    model_path: Path,
    sig_path: Path,
    sig_name: str,
    bundle: _Bundle,
    method: SignatureMethod,
    signer: str | None,
    configure: Callable[[Any], Any],
    caveat: str = "",
) -> SignatureResult:
    """Let the library verify the signature and every file; translate its outcome into findings."""
    from model_signing import verifying

    new_config: Any = verifying.Config  # the library ships no type hints
    try:
        hashing_config = _hashing_config(bundle.serialization, model_path, sig_path)
        config = configure(new_config()).set_hashing_config(hashing_config)
        config.verify(model_path, sig_path)
    except OSError as exc:
        return SignatureResult(
            "unverifiable",
            method,
            signer,
            (
                Finding(
                    "signature.unverifiable",
                    "medium",
                    f"Could not read the model to check its signature: {exc.strerror or exc}",
                    exc.filename and _name(Path(exc.filename)),
                ),
            ),
            sig_name,
        )
    except Exception as exc:  # the library signals every failure as an exception of its own choosing
        return _failed(model_path, sig_path, bundle, method, signer, exc, caveat)
    detail = f"{method} signature by {signer}" if signer else f"{method} signature"
    return SignatureResult(
        "verified",
        method,
        signer,
        (
            Finding(
                "signature.verified",
                "info",
                f"Model-signing {detail} verified: every file matches the signed manifest",
                sig_name,
                evidence=caveat or None,
            ),
        ),
        sig_name,
    )


def _failed(
    model_path: Path,
    sig_path: Path,
    bundle: _Bundle,
    method: SignatureMethod,
    signer: str | None,
    exc: Exception,
    caveat: str,
) -> SignatureResult:
    sig_name = _name(sig_path)
    reason = str(exc).strip() or type(exc).__name__
    if reason.startswith(_MISMATCH):
        # The signature itself verified (the library compares files only after that), so the signed
        # manifest is authentic and the files on disk are not what was signed.
        findings = _file_mismatches(model_path, sig_path, bundle)
        return SignatureResult("failed", method, signer, findings, sig_name)
    if method == "key" and reason.startswith("Key mismatch"):
        message = "The signature was not made with the given public key (the key recorded in the bundle differs)"
    elif type(exc).__name__ == "InvalidSignature":
        message = "The signature does not verify: the signed manifest was altered or the key does not match"
    else:
        message = f"The signature does not verify: {reason}"
    claimed = f"; claimed signer: {bundle.claimed_identity}" if bundle.claimed_identity else ""
    evidence = (caveat + claimed).lstrip("; ") or None
    return SignatureResult(
        "failed",
        method,
        None,
        (Finding("signature.invalid", "high", message, sig_name, evidence=evidence),),
        sig_name,
    )


def _file_mismatches(model_path: Path, sig_path: Path, bundle: _Bundle) -> tuple[Finding, ...]:
    """One finding per file that is changed, missing or not covered by the signature."""
    sig_name = _name(sig_path)
    try:
        actual = _actual_digests(model_path, sig_path, bundle)
    except Exception as exc:  # the files changed under us or cannot be re-read: still a mismatch
        return (
            Finding(
                "signature.invalid",
                "high",
                "The model's files do not match the signed manifest",
                sig_name,
                evidence=str(exc),
            ),
        )
    expected = bundle.resources
    single = not model_path.is_dir()

    def label(identifier: str) -> str:
        return model_path.name if single and identifier == "." else identifier

    findings: list[Finding] = []
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            findings.append(
                Finding(
                    "signature.invalid",
                    "high",
                    f"{label(name)} does not match the signed manifest (changed after signing)",
                    label(name),
                    evidence=f"signed sha256 {expected[name]}, found {actual[name]}; signature {sig_name}",
                )
            )
    for name in sorted(expected.keys() - actual.keys()):
        findings.append(
            Finding(
                "signature.invalid",
                "high",
                f"{label(name)} is in the signed manifest but missing from the model",
                label(name),
                evidence=f"signature {sig_name}",
            )
        )
    for name in sorted(actual.keys() - expected.keys()):
        findings.append(
            Finding(
                "signature.invalid",
                "high",
                f"{label(name)} is not covered by the signature (added after signing)",
                label(name),
                evidence=f"signature {sig_name}",
            )
        )
    if not findings:  # the library saw a difference this second hashing pass did not (a file changing now)
        findings.append(
            Finding("signature.invalid", "high", "The model's files do not match the signed manifest", sig_name)
        )
    return tuple(findings)


def _actual_digests(model_path: Path, sig_path: Path, bundle: _Bundle) -> dict[str, str]:
    """The model's digests hashed exactly as the library's `verify` hashes them."""
    config = _hashing_config(bundle.serialization, model_path, sig_path)
    config.add_ignored_paths(model_path=model_path, paths=bundle.serialization.get("ignore_paths", []))
    manifest = config.hash(model_path)
    return {str(rd.identifier): str(rd.digest.digest_hex) for rd in manifest.resource_descriptors()}


# --- reading the bundle (never trusted before the library verifies it) ---------------------------


class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class _Bundle:
    method: SignatureMethod
    serialization: dict[str, Any]
    resources: dict[str, str]  # manifest identifier -> hex digest, as the (unverified) payload says
    key_hint: str | None = None
    claimed_identity: str | None = None
    san: str | None = None
    issuer: str | None = None


def _parse_bundle(path: Path) -> _Bundle:
    """Enough structure to pick a verifier and to explain a mismatch; any defect is `_Malformed`."""
    try:
        if path.stat().st_size > 64 << 20:
            raise _Malformed("Signature file larger than 64 MiB; not a model-signing bundle")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _Malformed(f"Not a JSON Sigstore bundle: {exc}") from exc
    if not isinstance(doc, dict):
        raise _Malformed("Not a JSON Sigstore bundle: the document is not a JSON object")
    material = _get(doc, "verificationMaterial", dict)
    envelope = _get(doc, "dsseEnvelope", dict)
    media_type = _get(doc, "mediaType", str)
    if not media_type.startswith("application/vnd.dev.sigstore.bundle"):
        raise _Malformed(f"Unexpected bundle media type {media_type!r}")
    signatures = _get(envelope, "signatures", list)
    if not signatures or not isinstance(signatures[0], dict) or not isinstance(signatures[0].get("sig"), str):
        raise _Malformed("The DSSE envelope carries no signature")
    try:
        payload = json.loads(base64.b64decode(_get(envelope, "payload", str), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _Malformed(f"The DSSE payload is not base64-encoded JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise _Malformed("The DSSE payload is not a JSON object")
    predicate = _get(payload, "predicate", dict)
    serialization = _get(predicate, "serialization", dict)
    if serialization.get("method") not in ("files", "shards"):
        raise _Malformed(f"Unknown model-signing serialization {serialization.get('method')!r}")
    resources: dict[str, str] = {}
    for item in _get(predicate, "resources", list):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("digest"), str)
        ):
            raise _Malformed("A manifest resource lacks a name or digest")
        resources[item["name"]] = item["digest"]

    if isinstance(material.get("publicKey"), dict):
        hint = material["publicKey"].get("hint")
        return _Bundle("key", serialization, resources, key_hint=hint if isinstance(hint, str) else None)
    if isinstance(material.get("certificate"), dict):  # v0.3 keyless: one Fulcio leaf + Rekor entries
        cert = _load_cert(_get(material["certificate"], "rawBytes", str))
        return _sigstore_bundle(serialization, resources, cert)
    if isinstance(material.get("x509CertificateChain"), dict):
        certs = _get(material["x509CertificateChain"], "certificates", list)
        if not certs or not isinstance(certs[0], dict):
            raise _Malformed("The certificate chain is empty")
        leaf = _load_cert(_get(certs[0], "rawBytes", str))
        if material.get("tlogEntries"):  # older keyless bundles carried the Fulcio chain
            return _sigstore_bundle(serialization, resources, leaf)
        return _Bundle("certificate", serialization, resources, claimed_identity=_subject(leaf))
    raise _Malformed("The bundle names no public key or certificate")


def _sigstore_bundle(serialization: dict[str, Any], resources: dict[str, str], cert: Any) -> _Bundle:
    san, issuer = _fulcio_identity(cert)
    claimed = f"{san} (issuer {issuer})" if san else None
    return _Bundle("sigstore", serialization, resources, claimed_identity=claimed, san=san, issuer=issuer)


def _get(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise _Malformed(f"Field {key!r} is missing or not a {kind.__name__}")
    return value


def _load_cert(raw_b64: str) -> Any:
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(base64.b64decode(raw_b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _Malformed(f"The bundle's certificate cannot be parsed: {exc}") from exc


def _subject(cert: Any) -> str:
    subject = str(cert.subject.rfc4514_string())
    san, _ = _fulcio_identity(cert)
    if subject and san:
        return f"{subject} ({san})"
    return subject or san or "certificate with an empty subject"


def _fulcio_identity(cert: Any) -> tuple[str | None, str | None]:
    from cryptography import x509

    san: str | None = None
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = names.get_values_for_type(x509.RFC822Name) + names.get_values_for_type(x509.UniformResourceIdentifier)
        san = str(values[0]) if values else None
    except (x509.ExtensionNotFound, ValueError):
        pass
    issuer: str | None = None
    for oid, der in ((_OIDC_ISSUER_V2, True), (_OIDC_ISSUER_V1, False)):
        try:
            raw = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
        except (x509.ExtensionNotFound, ValueError):
            continue
        issuer = _der_utf8(raw) if der else raw.decode("utf-8", "replace")
        break
    return san, issuer


def _der_utf8(raw: bytes) -> str:
    """A DER UTF8String (tag 0x0c) with a short or long length."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return raw.decode("utf-8", "replace")
    length, start = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    return raw[start : start + length].decode("utf-8", "replace")


# --- helpers -------------------------------------------------------------------------------------


def _hashing_config(serialization: dict[str, Any], model_path: Path, sig_path: Path) -> Any:
    """The hashing the signer used (as the library itself would guess it from the manifest), with the
    signature file excluded when it lies inside the model directory."""
    from model_signing import hashing

    algorithm = serialization.get("hash_type", "sha256")
    symlinks = bool(serialization.get("allow_symlinks", False))
    new_config: Any = hashing.Config  # the library ships no type hints
    config = new_config()
    if serialization.get("method") == "shards":
        config.use_shard_serialization(
            hashing_algorithm=algorithm, shard_size=int(serialization["shard_size"]), allow_symlinks=symlinks
        )
    else:
        config.use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=symlinks)
    ignored = []
    if model_path.is_dir() and sig_path.is_relative_to(model_path):
        ignored.append(sig_path.relative_to(model_path))
    return config.set_ignored_paths(paths=ignored, ignore_git_paths=True).set_allow_symlinks(symlinks)


def _offline_trust_config() -> str:
    """Sigstore's production trust root from sigstore-python's embedded copy or its TUF cache, as a
    client trust config document for `model_signing` (which otherwise refreshes it over the network)."""
    import logging

    from sigstore.models import ClientTrustConfig

    tuf_logger = logging.getLogger("sigstore._internal.tuf")
    level = tuf_logger.level
    tuf_logger.setLevel(logging.ERROR)  # it warns that offline mode skips updates: that is the point
    try:
        config = ClientTrustConfig.production(offline=True)
    finally:
        tuf_logger.setLevel(level)
    # sigstore-python has no public serializer for the trust config; `_inner` is its protobuf model.
    return str(config._inner.to_json())


def _key_identity(public_key: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(public_key.read_bytes())
    except (ValueError, TypeError) as exc:
        raise WeighbridgeError(
            f"Cannot read the public key {public_key}: {exc}", "Give the lab's EC public key in PEM format"
        ) from exc
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise WeighbridgeError(f"No such file: {path}", f"Give the path of the {what}")


def _malformed(sig_name: str, reason: str) -> SignatureResult:
    return SignatureResult(
        "failed",
        None,
        None,
        (
            Finding(
                "signature.malformed",
                "high",
                f"The model signature cannot be read as a model-signing bundle: {reason}",
                sig_name,
            ),
        ),
        sig_name,
    )


def _name(path: Path) -> str:
    return path.name or str(path)
