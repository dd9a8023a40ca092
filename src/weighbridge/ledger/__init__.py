"""The audit ledger: hash-chained, signed entries; Merkle checkpoints; bundles; proofs.

Core only (no store, no CLI): `weighbridge.services.ledger` writes and reads it through the store.
"""

from weighbridge.ledger.bundle import KeyRecord, bundle_lines
from weighbridge.ledger.canonical import canonical_json, evidence_digest
from weighbridge.ledger.chain import make_checkpoint, make_entry
from weighbridge.ledger.proof import InclusionProof, proof_from_json, proof_to_json, verify_proof
from weighbridge.ledger.records import GENESIS_HASH, Checkpoint, LedgerEntry
from weighbridge.ledger.verify import VerifyResult, verify_lines

__all__ = [
    "GENESIS_HASH",
    "Checkpoint",
    "InclusionProof",
    "KeyRecord",
    "LedgerEntry",
    "VerifyResult",
    "bundle_lines",
    "canonical_json",
    "evidence_digest",
    "make_checkpoint",
    "make_entry",
    "proof_from_json",
    "proof_to_json",
    "verify_lines",
    "verify_proof",
]
