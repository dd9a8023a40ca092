"""OpenSSF model-signing verification: a model signed in the test with a fresh EC P-256 key."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from weighbridge.errors import WeighbridgeError
from weighbridge.intake.signature import find_signature, verify_model_signature


def _key_pair(where: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = where / f"{name}.pem"
    public = where / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _safetensors(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))


def _fingerprint(public: Path) -> str:
    key = serialization.load_pem_public_key(public.read_bytes())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _sign(model: Path, private: Path, signature: Path) -> None:
    """Sign with the library's Python API, which (unlike its CLI) does not exclude the signature
    file from the manifest: so these tests also prove that `model.sig` inside the model is ignored."""
    from model_signing import signing

    new_config: Any = signing.Config  # the library ships no type hints
    new_config().use_elliptic_key_signer(private_key=private).sign(model, signature)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    where = tmp_path_factory.mktemp("keys")
    private, public = _key_pair(where, "lab")
    _, other = _key_pair(where, "other")
    return private, public, other


@pytest.fixture
def signed_model(tmp_path: Path, keys: tuple[Path, Path, Path]) -> Path:
    model = tmp_path / "tiny-model"
    model.mkdir()
    _safetensors(model / "model.safetensors")
    (model / "config.json").write_text(json.dumps({"architectures": ["TinyForCausalLM"], "hidden_size": 2}))
    _sign(model, keys[0], model / "model.sig")
    return model


def test_verified_with_the_right_public_key_records_its_fingerprint(
    signed_model: Path, keys: tuple[Path, Path, Path]
) -> None:
    result = verify_model_signature(signed_model, public_key=keys[1])
    assert (result.status, result.method) == ("verified", "key")
    assert result.identity == _fingerprint(keys[1])
    assert [f.kind for f in result.findings] == ["signature.verified"]
    assert result.findings[0].severity == "info"
    assert result.signature_file == "model.sig"


def test_a_changed_byte_is_invalid_and_names_the_file(signed_model: Path, keys: tuple[Path, Path, Path]) -> None:
    weights = signed_model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    result = verify_model_signature(signed_model, public_key=keys[1])
    assert result.status == "failed"
    assert [(f.kind, f.severity, f.file) for f in result.findings] == [
        ("signature.invalid", "high", "model.safetensors")
    ]
    assert "changed after signing" in result.findings[0].message
    assert hashlib.sha256(bytes(data)).hexdigest() in (result.findings[0].evidence or "")


def test_added_and_removed_files_are_invalid(signed_model: Path, keys: tuple[Path, Path, Path]) -> None:
    (signed_model / "config.json").unlink()
    (signed_model / "adapter.safetensors").write_bytes(b"\0" * 8)
    result = verify_model_signature(signed_model, public_key=keys[1])
    assert result.status == "failed"
    messages = {f.file: f.message for f in result.findings}
    assert "missing" in messages["config.json"]
    assert "not covered by the signature" in messages["adapter.safetensors"]


def test_a_wrong_public_key_is_invalid(signed_model: Path, keys: tuple[Path, Path, Path]) -> None:
    result = verify_model_signature(signed_model, public_key=keys[2])
    assert (result.status, result.identity) == ("failed", None)
    assert [(f.kind, f.severity) for f in result.findings] == [("signature.invalid", "high")]
    assert "not made with the given public key" in result.findings[0].message


def test_a_forged_manifest_is_invalid(signed_model: Path, keys: tuple[Path, Path, Path]) -> None:
    """Rewrite the signed payload to bless a different file digest: the signature no longer verifies."""
    sig = signed_model / "model.sig"
    bundle = json.loads(sig.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    sig.write_text(json.dumps(bundle))
    result = verify_model_signature(signed_model, public_key=keys[1])
    assert result.status == "failed"
    assert [(f.kind, f.severity) for f in result.findings] == [("signature.invalid", "high")]


def test_absent_signature_is_an_info_finding(tmp_path: Path) -> None:
    _safetensors(tmp_path / "model.safetensors")
    result = verify_model_signature(tmp_path)
    assert (result.status, result.method, result.identity) == ("absent", None, None)
    assert [(f.kind, f.severity) for f in result.findings] == [("signature.absent", "info")]


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a signature",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {}, '
        b'"dsseEnvelope": {"payload": "!!!", "payloadType": "x", "signatures": [{"sig": "AA=="}]}}',
    ],
)
def test_garbage_signature_is_malformed_not_a_crash(
    signed_model: Path, keys: tuple[Path, Path, Path], content: bytes
) -> None:
    (signed_model / "model.sig").write_bytes(content)
    result = verify_model_signature(signed_model, public_key=keys[1])
    assert result.status == "failed"
    assert [(f.kind, f.severity, f.file) for f in result.findings] == [("signature.malformed", "high", "model.sig")]


def test_truncated_real_signature_never_crashes(signed_model: Path, keys: tuple[Path, Path, Path]) -> None:
    sig = signed_model / "model.sig"
    text = sig.read_text()
    for cut in (len(text) // 3, len(text) // 2, len(text) - 5):
        sig.write_text(text[:cut])
        result = verify_model_signature(signed_model, public_key=keys[1])
        assert result.status == "failed"
        assert result.findings[0].kind == "signature.malformed"


def test_key_signature_without_a_public_key_is_unverifiable(signed_model: Path) -> None:
    result = verify_model_signature(signed_model)
    assert (result.status, result.method) == ("unverifiable", "key")
    assert [(f.kind, f.severity) for f in result.findings] == [("signature.unverifiable", "medium")]


def test_single_gguf_file_signed_as_a_file(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    """model_signing signs a single file directly (its manifest has one entry named "."); the
    signature travels beside it as FILE.sig, or as model.sig in the same directory."""
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    _sign(gguf, keys[0], tmp_path / "tiny.gguf.sig")
    assert find_signature(gguf) == tmp_path / "tiny.gguf.sig"
    result = verify_model_signature(gguf, public_key=keys[1])
    assert (result.status, result.identity) == ("verified", _fingerprint(keys[1]))

    (tmp_path / "tiny.gguf.sig").rename(tmp_path / "model.sig")
    assert verify_model_signature(gguf, public_key=keys[1]).status == "verified"

    gguf.write_bytes(gguf.read_bytes() + b"\0")
    result = verify_model_signature(gguf, public_key=keys[1])
    assert result.status == "failed"
    assert [(f.kind, f.file) for f in result.findings] == [("signature.invalid", "tiny.gguf")]


def test_signature_given_explicitly_outside_the_model(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    model = tmp_path / "m"
    model.mkdir()
    _safetensors(model / "model.safetensors")
    _sign(model, keys[0], tmp_path / "elsewhere.sig")
    assert verify_model_signature(model, public_key=keys[1]).findings[0].kind == "signature.absent"
    result = verify_model_signature(model, signature=tmp_path / "elsewhere.sig", public_key=keys[1])
    assert result.status == "verified"


def test_the_documented_cli_command_signs_what_weighbridge_verifies(tmp_path: Path) -> None:
    """The exact command docs/signing.md gives the lab."""
    private, public = _key_pair(tmp_path, "cli")
    model = tmp_path / "cli-model"
    model.mkdir()
    _safetensors(model / "model.safetensors")
    (model / ".gitattributes").write_text("*.safetensors filter=lfs\n")  # git metadata is never signed
    signed = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "sign",
            "key",
            str(model),
            "--private_key",
            str(private),
            "--signature",
            str(model / "model.sig"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert signed.returncode == 0, signed.stderr
    result = verify_model_signature(model, public_key=public)
    assert (result.status, result.identity) == ("verified", _fingerprint(public))


def test_unreadable_public_key_is_the_reviewers_error(signed_model: Path, tmp_path: Path) -> None:
    with pytest.raises(WeighbridgeError):
        verify_model_signature(signed_model, public_key=tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(WeighbridgeError):
        verify_model_signature(signed_model, public_key=bad)
