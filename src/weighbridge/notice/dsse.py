"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1): sign and open.

Hand-written rather than taken from sigstore-python or in-toto because both tie the envelope to
their own key and trust machinery (Fulcio certificates, Rekor, securesystemslib signers); a notice
is signed by the organisation's plain Ed25519 key through the shared `Signer`. The format is the
standard one, so an envelope written here verifies with any DSSE implementation (a test checks our
pre-authentication encoding against sigstore-python's).

The file form is strict: `to_bytes` is the only serialisation, and `from_bytes` refuses any text
that does not re-serialise to exactly the same bytes. Without that, whitespace, key order or
non-canonical base64 (unused low bits in the last character) could be changed without touching a
signed byte, and "any changed byte fails verification" would not hold.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from weighbridge.ledger.signing import Signer, verify_signature

__all__ = ["Envelope", "EnvelopeError", "EnvelopeSignature", "pae", "sign_envelope"]


class EnvelopeError(ValueError):
    """The bytes are not a well-formed, canonical DSSE envelope; the message says what is wrong."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed.

    `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal bytes. Signing
    the type together with the body stops a signature over one kind of document being replayed as
    another (a revocation list presented as a notice).
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    keyid: str  # unauthenticated hint: verification never trusts it, only matches it to a key
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """The one file form: sorted keys, two-space indent, a final newline (stable, diff-friendly)."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse an envelope file, refusing anything but the exact bytes `to_bytes` writes.

        Raises:
            EnvelopeError: not UTF-8 JSON, a field missing or of the wrong type, bad base64, or
                a byte that differs from the canonical form (the message says which).
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"not UTF-8 text (byte {exc.start})") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EnvelopeError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(raw, dict):
            raise EnvelopeError("not a DSSE envelope (the JSON is not an object)")
        payload_type = _field(raw, "payloadType", str)
        payload = _b64(_field(raw, "payload", str), "payload")
        sigs_raw = _field(raw, "signatures", list)
        signatures = []
        for n, item in enumerate(sigs_raw):
            if not isinstance(item, dict):
                raise EnvelopeError(f"signature {n} is not an object")
            signatures.append(
                EnvelopeSignature(_field(item, "keyid", str), _b64(_field(item, "sig", str), f"signature {n}"))
            )
        envelope = cls(payload_type, payload, tuple(signatures))
        canonical = envelope.to_bytes()
        if canonical != data:
            at = next((i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b), None)
            where = f"byte {at}" if at is not None else f"length {len(data)} instead of {len(canonical)}"
            raise EnvelopeError(f"the file is not in canonical form (first difference at {where}): it was edited")
        return envelope

    def verified_by(self, public_key: bytes, key_id: str) -> bool:
        """True when a signature that names `key_id` is `public_key`'s signature over the PAE."""
        message = pae(self.payload_type, self.payload)
        return any(s.keyid == key_id and verify_signature(public_key, s.sig, message) for s in self.signatures)


def sign_envelope(payload: bytes, payload_type: str, signer: Signer) -> Envelope:
    """One signature by `signer` over the PAE of (`payload_type`, `payload`)."""
    sig = signer.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (EnvelopeSignature(signer.key_id, sig),))


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        what = "missing" if value is None else f"a {type(value).__name__}, not a {kind.__name__}"
        raise EnvelopeError(f"field {name!r} is {what}")
    return value


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise EnvelopeError(f"the {what} is not valid base64") from None
