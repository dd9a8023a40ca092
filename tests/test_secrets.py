"""Secrets and PII scan of text artifacts and string metadata. All planted values are fake."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from weighbridge.domain import Finding
from weighbridge.inspection import secrets
from weighbridge.inspection.metadata import ModelMetadata
from weighbridge.inspection.secrets import redact, scan_secrets

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # ditto
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HF = "hf_" + "FaKeToKeN0123456789abcdefGHIJKLmn"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlLXVzZXIifQ.c2lnbmF0dXJlLWZha2UtMTIz"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEfakefakefake\n-----END RSA PRIVATE KEY-----\n"


def by_kind(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.kind, []).append(f)
    return out


@pytest.fixture()
def planted(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps({"model_type": "llama", "hidden_size": 64, "_upload": {"aws_access_key_id": AWS_KEY}}, indent=2)
    )
    (model / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "<|endoftext|>", "hub_token": GITHUB, "chat_template": "{{ messages }}"}, indent=2)
    )
    (model / "generation_config.json").write_text(
        "{\n" + f'  "aws_secret_access_key": "{AWS_SECRET}",\n  "api_key": "Zq8vL2mN5xR7tY1w",\n'
        '  "password": "your_password_here"\n}\n'
    )
    (model / "chat_template.jinja").write_text("{# deploy with " + HF + " #}\n{{ bos_token }}\n")
    (model / "README.md").write_text("# Card\n\nContact jane.doe@example.com or +44 20 7946 0958.\n")
    (model / "notes.txt").write_text(
        "line one\n" + PRIVATE_KEY + f"session {JWT}\nIBAN GB82 WEST 1234 5698 7654 32\ncard 4111 1111 1111 1111\n"
        "server 8.8.8.8 and 10.1.2.3; loopback 127.0.0.1\n"
    )
    (model / "tokenizer.json").write_text(
        json.dumps({"model": {"vocab": {"@gmail": 0, "Ġ@": 1, "sk-": 2, "hf_": 3, "ĠAKIA": 4, "2019-2020": 5}}})
    )
    (model / "model.safetensors").write_bytes(b"")  # weights are not scanned as text
    return model


def scan(model: Path) -> list[Finding]:
    found: list[Finding] = scan_secrets(model, sorted(p.relative_to(model) for p in model.iterdir()), None)
    return found


def test_planted_credentials_are_found_with_location_and_redacted(planted: Path) -> None:
    found = by_kind(scan(planted))
    [aws] = found["secret.aws_access_key"]
    assert (aws.severity, aws.file, aws.location) == ("high", "config.json", "line 5")
    assert aws.evidence == "AKIA…MPLE (20 chars)"
    assert "revoke" in aws.message
    assert found["secret.aws_secret_key"][0].file == "generation_config.json"
    assert found["secret.github_token"][0].file == "tokenizer_config.json"
    assert found["secret.hf_token"][0].location == "line 1"
    assert found["secret.jwt"][0].severity == "high"
    [key] = found["secret.private_key"]
    assert (key.severity, key.file, key.location) == ("critical", "notes.txt", "line 2")
    # high entropy is a credential; "your_password_here" is a placeholder
    [generic] = found["secret.generic_assignment"]
    assert generic.evidence is not None and generic.evidence.startswith("Zq8v")
    for finding in scan(planted):
        assert AWS_KEY not in (finding.evidence or "") + finding.message
        assert AWS_SECRET not in (finding.evidence or "") + finding.message


def test_planted_pii_is_found(planted: Path) -> None:
    found = by_kind(scan(planted))
    [email] = found["pii.email"]
    assert (email.file, email.location, email.severity) == ("README.md", "line 3", "low")  # docs: often deliberate
    assert found["pii.phone"][0].file == "README.md"
    assert found["pii.iban"][0].severity == "medium" and found["pii.iban"][0].location == "line 6"
    assert found["pii.credit_card"][0].location == "line 7"
    ips = {f.evidence: f.severity for f in found["pii.ip_address"]}
    assert sorted(ips.values()) == ["info", "low"]  # 10.1.2.3 private, 8.8.8.8 public; loopback ignored


def test_vocabulary_fragments_are_not_findings(planted: Path) -> None:
    assert [f for f in scan(planted) if f.file == "tokenizer.json"] == []


def test_pii_in_config_is_medium(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"author": "jane.doe@example.com"}')
    [finding] = scan_secrets(tmp_path, [tmp_path / "config.json"], None)
    assert (finding.kind, finding.severity) == ("pii.email", "medium")


def test_flooding_is_capped_with_one_summary(tmp_path: Path) -> None:
    (tmp_path / "dump.txt").write_text("".join(f"user{i}@example.org\n" for i in range(50)) + "user0@example.org\n")
    findings = scan_secrets(tmp_path, [tmp_path / "dump.txt"], None)
    assert len(findings) == secrets.MAX_FINDINGS_PER_KIND + 1
    assert "and 1 more time" in findings[0].message  # user0 repeats: one finding, counted
    assert findings[-1].evidence == "45 more" and "45 more distinct e-mail addresses" in findings[-1].message


def test_oversized_file_is_truncated_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "MAX_BYTES_PER_FILE", 1000)
    (tmp_path / "big.txt").write_text("x" * 2000 + f"\n{AWS_KEY}\n")
    [finding] = scan_secrets(tmp_path, [tmp_path / "big.txt"], None)
    assert finding.kind == "secret.scan_truncated" and finding.severity == "info"


def test_secret_across_a_block_boundary_is_found_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "BLOCK_BYTES", 64)
    (tmp_path / "tokenizer.json").write_text("a" * 55 + " " + AWS_KEY + " " + "b" * 200)  # one long line
    [finding] = scan_secrets(tmp_path, [tmp_path / "tokenizer.json"], None)
    assert (finding.kind, finding.location) == ("secret.aws_access_key", "line 1")


def test_line_numbers_survive_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "BLOCK_BYTES", 32)
    (tmp_path / "notes.md").write_text("".join(f"line {i}\n" for i in range(1, 100)) + f"key {AWS_KEY}\n")
    [finding] = scan_secrets(tmp_path, [tmp_path / "notes.md"], None)
    assert finding.location == "line 100"


def test_metadata_strings_and_chat_template_are_scanned(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 60)  # only the magic matters: metadata comes from the record
    metadata = ModelMetadata(
        format="gguf",
        chat_template="{% if x %}" + AWS_KEY + "{% endif %}",
        raw={"general.name": "fine", "general.author": "ops@example.com", "general.tags": ["a", HF]},
    )
    found = by_kind(scan_secrets(tmp_path, [model], metadata))
    assert found["secret.aws_access_key"][0].location == "GGUF key tokenizer.chat_template"
    assert found["pii.email"][0].location == "GGUF key general.author"
    assert found["secret.hf_token"][0].location == "GGUF key general.tags[1]"


def test_gguf_string_fields_are_read_when_no_metadata_is_given(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.description", f"uploaded by bob@example.net with {GITHUB}")
    writer.add_chat_template("{{ messages }}\n{# " + JWT + " #}")
    writer.add_token_list(["ok", "bad@example.com"])  # vocabulary: skipped
    writer.add_tensor("w", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    found = by_kind(scan_secrets(tmp_path, [path], None))
    assert found["pii.email"][0].location == "GGUF key general.description"
    assert len(found["pii.email"]) == 1
    assert found["secret.github_token"][0].file == "tiny.gguf"
    assert found["secret.jwt"][0].location == "GGUF key tokenizer.chat_template, line 2"


def test_safetensors_metadata_is_scanned(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(path), metadata={"converted_by": AWS_KEY})
    [finding] = scan_secrets(tmp_path, [path], None)
    assert (finding.kind, finding.location) == ("secret.aws_access_key", "__metadata__.converted_by")


def test_redact_keeps_only_the_ends() -> None:
    assert redact(AWS_SECRET) == "wJal…EKEY (40 chars)"
    assert redact("short") == "sh…(5 chars)"


@pytest.mark.slow
def test_default_model_metadata_is_clean(default_model_path: Path) -> None:
    findings = scan_secrets(default_model_path.parent, [default_model_path], None)
    assert [f for f in findings if f.severity in ("high", "critical")] == []


@pytest.mark.slow
def test_default_model_metadata_record_is_clean(default_model_path: Path) -> None:
    """The orchestrator's path: the metadata record's strings and chat template, not a second read."""
    from weighbridge.inspection.metadata import describe_model

    metadata = describe_model(default_model_path)
    assert metadata.chat_template and "<|im_start|>" in metadata.chat_template
    findings = scan_secrets(default_model_path.parent, [default_model_path], metadata)
    assert [f for f in findings if f.severity in ("high", "critical", "medium")] == []
