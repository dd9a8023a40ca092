"""`weighbridge notice` end to end on a notice signed by this installation's organisation key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.test_notice import make_content, make_model
from weighbridge.cli import app
from weighbridge.ledger.signing import KeySigner
from weighbridge.notice import build_notice, public_key_pem, sign_notice, write_notice
from weighbridge.services.orgkey import organisation_signer
from weighbridge.store.db import Store, default_url
from weighbridge.store.notice_schema import list_notices, save_notice

runner = CliRunner()


@pytest.fixture()
def published(tmp_path: Path, isolated_home: Path) -> tuple[Path, Path]:
    signer = organisation_signer(isolated_home, notice=lambda _: None)
    model = make_model(tmp_path)
    envelope = sign_notice(build_notice(make_content(model, signer)), signer)
    store = Store(default_url())
    try:
        save_notice(store, envelope, review_id="r-1")
        assert [r.id for r in list_notices(store)] == ["n-0001"]
    finally:
        store.close()
    return write_notice(envelope, tmp_path / "out"), model


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_verify_valid_with_model(published: tuple[Path, Path]) -> None:
    path, model = published
    code, text = invoke("notice", "verify", str(path), "--model", str(model))
    assert code == 0, text
    assert "VALID" in text and "all 2 model file(s) match" in text
    assert "revocation not checked" in text


def test_verify_names_the_changed_file(published: tuple[Path, Path]) -> None:
    path, model = published
    (model / "sub" / "tokenizer.json").write_text('{"vocab": {"x": 1}}')
    code, text = invoke("notice", "verify", str(path), "--model", str(model), "--json")
    assert code == 1
    data = json.loads(text)
    assert data["valid"] is False
    assert [(p["kind"], p["file"]) for p in data["problems"]] == [("file_mismatch", "sub/tokenizer.json")]


def test_verify_with_a_foreign_key_fails(published: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_text(public_key_pem(KeySigner.generate().public_key))
    code, text = invoke("notice", "verify", str(published[0]), "--key", str(other))
    assert code == 1 and "not a trusted key" in text and "NOT VALID" in text


def test_verify_edited_notice_fails(published: tuple[Path, Path]) -> None:
    path = published[0]
    path.write_bytes(path.read_bytes().replace(b'"payloadType"', b'"payloadtype"'))
    code, text = invoke("notice", "verify", str(path))
    assert code == 1 and "damaged or was edited" in text


def test_revoke_then_verify_says_revoked(published: tuple[Path, Path], isolated_home: Path) -> None:
    path, _ = published
    code, text = invoke("notice", "revoke", "n-00", "--reason", "canary found in the weights")
    assert code == 0, text
    assert (isolated_home / "notices" / "revocations.dsse.json").exists()
    code, text = invoke("notice", "verify", str(path))
    assert code == 1
    assert "revoked on" in text and "canary found in the weights" in text
    code, text = invoke("notice", "list")
    assert code == 0 and "revoked" in text
    code, text = invoke("notice", "revoke", "n-0001", "--reason", "again")
    assert code == 1 and "already revoked" in text


def test_snippet_and_show(published: tuple[Path, Path]) -> None:
    path, _ = published
    code, text = invoke("notice", "snippet", str(path))
    assert code == 0, text
    front = yaml.safe_load(text.split("---\n")[1])
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["args"]["category"] for m in metrics} == {"vcr", "cse"}
    assert "[![weighbridge review: restricted api]" in text
    code, text = invoke("notice", "snippet", str(path), "--url", "https://agency.example/n-0001.json")
    assert code == 0 and text.count("https://agency.example/n-0001.json") == 2
    code, text = invoke("notice", "show", str(path))
    assert code == 0 and "tiny" in text and "Violent crimes" in text and "restricted api" in text
