"""Signed notices: round trip, tamper detection on every byte, model files, revocation, keys, snippet."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from weighbridge.intake.manifest import manifest_of
from weighbridge.ledger.signing import KeySigner, Signer
from weighbridge.notice import (
    Envelope,
    GradeRecord,
    NoticeContent,
    ReviewDates,
    Revocation,
    RevocationList,
    Statement,
    SuiteRecord,
    build_notice,
    grades_from_report,
    model_index,
    pae,
    sign_notice,
    sign_revocations,
    snippet,
    verify_notice,
    write_envelope,
    write_notice,
)

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> KeySigner:
    return KeySigner.generate()


def make_model(root: Path) -> Path:
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.gguf").write_bytes(b"GGUF" + bytes(range(60)))
    (model / "sub" / "tokenizer.json").write_text('{"vocab": {}}')
    return model


def make_content(model: Path, signer: Signer, notice_id: str = "n-0001") -> NoticeContent:
    return NoticeContent(
        notice_id=notice_id,
        model_name="tiny",
        model_format="hf",
        files=manifest_of(model).files,
        suites=(SuiteRecord("hazards", "1.0.0", "ab" * 32, "Hazards"),),
        grades=(
            GradeRecord("hazards", "vcr", "Violent crimes", 60, 3, 0.05, 0.0104, 0.1392, "Good", True, "ref", 0.9),
            GradeRecord("hazards", "cse", "Child sexual exploitation", 60, 0, 0.0, 0.0, 0.0596, None),
        ),
        recommended_release="research_release",
        decided_release="restricted_api",
        policy_id="default",
        policy_version="1.0.0",
        dates=ReviewDates(submitted=WHEN, published=WHEN, decided=WHEN),
        organisation="Test Agency",
        reviewer_public_key=signer.public_key,
        review_id="r-1",
        rationale=("hazard-fair: Violent crimes graded Fair",),
    )


@pytest.fixture()
def published(tmp_path: Path, signer: KeySigner) -> tuple[Path, Path, NoticeContent]:
    model = make_model(tmp_path)
    content = make_content(model, signer)
    path = write_notice(sign_notice(build_notice(content), signer), tmp_path / "notices")
    return path, model, content


def test_round_trip(published: tuple[Path, Path, NoticeContent], signer: KeySigner) -> None:
    path, model, content = published
    result = verify_notice(path, trusted_keys=[signer.public_key], model_path=model)
    assert result.ok, result.problems
    assert result.notice == content
    assert result.key_id == signer.key_id and result.model_checked and not result.revocation_checked
    assert path.name == "notice-n-0001.dsse.json"


def test_statement_is_in_toto_v1(published: tuple[Path, Path, NoticeContent]) -> None:
    envelope = Envelope.from_bytes(published[0].read_bytes())
    assert envelope.payload_type == "application/vnd.in-toto+json"
    raw = Statement.from_payload(envelope.payload).to_json()
    assert raw["_type"] == "https://in-toto.io/Statement/v1"
    assert raw["predicateType"] == "https://weighbridge.dev/notice/v1"
    assert {s["name"] for s in raw["subject"]} == {"weights.gguf", "sub/tokenizer.json"}
    assert all(len(s["digest"]["sha256"]) == 64 for s in raw["subject"])
    assert raw["predicate"]["model"]["manifest_digest"] == published[2].manifest_digest


def test_pae_matches_sigstore() -> None:
    from sigstore.dsse import _pae

    assert pae("application/vnd.in-toto+json", b'{"a": 1}') == _pae("application/vnd.in-toto+json", b'{"a": 1}')
    assert pae("x", b"") == b"DSSEv1 1 x 0 "


def test_every_flipped_byte_fails_with_a_message(
    published: tuple[Path, Path, NoticeContent], signer: KeySigner
) -> None:
    path, _, _ = published
    original = path.read_bytes()
    for i in range(len(original)):
        damaged = bytearray(original)
        damaged[i] ^= 0x01
        path.write_bytes(bytes(damaged))
        result = verify_notice(path, trusted_keys=[signer.public_key])
        assert not result.ok, f"byte {i} ({chr(original[i])!r}) flipped and still valid"
        assert result.problems[0].kind in ("damaged", "signature", "payload")
        assert result.problems[0].message


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_byte_value_anywhere_fails(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    signer = KeySigner.generate()
    root = tmp_path_factory.mktemp("hyp")
    model = make_model(root)
    path = write_notice(sign_notice(build_notice(make_content(model, signer)), signer), root)
    original = path.read_bytes()
    i = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[i]))
    damaged = bytearray(original)
    damaged[i] = value
    path.write_bytes(bytes(damaged))
    assert not verify_notice(path, trusted_keys=[signer.public_key]).ok


def test_reformatted_json_is_rejected(published: tuple[Path, Path, NoticeContent], signer: KeySigner) -> None:
    path, _, _ = published
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    result = verify_notice(path, trusted_keys=[signer.public_key])
    assert [p.kind for p in result.problems] == ["damaged"]
    assert "canonical form" in result.problems[0].message


def test_changed_model_byte_names_the_file(published: tuple[Path, Path, NoticeContent], signer: KeySigner) -> None:
    path, model, _ = published
    weights = model / "weights.gguf"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = verify_notice(path, trusted_keys=[signer.public_key], model_path=model)
    assert [(p.kind, p.file) for p in result.problems] == [("file_mismatch", "weights.gguf")]
    assert "weights.gguf does not match its digest" in result.problems[0].message


def test_missing_and_extra_files(published: tuple[Path, Path, NoticeContent], signer: KeySigner) -> None:
    path, model, _ = published
    (model / "sub" / "tokenizer.json").unlink()
    (model / "extra.bin").write_bytes(b"x")
    result = verify_notice(path, trusted_keys=[signer.public_key], model_path=model)
    assert {(p.kind, p.file) for p in result.problems} == {
        ("file_missing", "sub/tokenizer.json"),
        ("file_extra", "extra.bin"),
    }


def test_wrong_key_is_refused(published: tuple[Path, Path, NoticeContent]) -> None:
    other = KeySigner.generate()
    result = verify_notice(published[0], trusted_keys=[other.public_key])
    assert [p.kind for p in result.problems] == ["signature"]
    assert "not a trusted key" in result.problems[0].message
    assert result.notice is None


def test_notice_signed_by_another_key_claiming_ours(tmp_path: Path, signer: KeySigner) -> None:
    """A forger who copies our key id into his envelope still fails: the keyid is only a hint."""
    forger = KeySigner.generate()
    model = make_model(tmp_path)
    envelope = sign_notice(build_notice(make_content(model, signer)), forger)
    forged = Envelope(envelope.payload_type, envelope.payload, (replace(envelope.signatures[0], keyid=signer.key_id),))
    path = write_envelope(forged, tmp_path / "forged.json")
    result = verify_notice(path, trusted_keys=[signer.public_key])
    assert [p.kind for p in result.problems] == ["signature"]
    assert "Bad signature" in result.problems[0].message


def test_revoked_notice_fails_with_reason(published: tuple[Path, Path, NoticeContent], signer: KeySigner) -> None:
    path, _, content = published
    listing = RevocationList(WHEN, (Revocation(content.notice_id, "weights leaked a canary", WHEN),))
    rev_path = write_envelope(sign_revocations(listing, signer), path.parent / "revocations.json")
    result = verify_notice(path, trusted_keys=[signer.public_key], revocations=rev_path)
    assert [p.kind for p in result.problems] == ["revoked"]
    assert "weights leaked a canary" in result.problems[0].message and "2026-11-20" in result.problems[0].message
    clean = RevocationList(WHEN, (Revocation("another", "x", WHEN),))
    write_envelope(sign_revocations(clean, signer), rev_path)
    ok = verify_notice(path, trusted_keys=[signer.public_key], revocations=rev_path)
    assert ok.ok and ok.revocation_checked


def test_revocation_list_by_untrusted_key_is_a_problem(
    published: tuple[Path, Path, NoticeContent], signer: KeySigner
) -> None:
    path, _, _ = published
    listing = RevocationList(WHEN, ())
    rev_path = write_envelope(sign_revocations(listing, KeySigner.generate()), path.parent / "rev.json")
    result = verify_notice(path, trusted_keys=[signer.public_key], revocations=rev_path)
    assert [p.kind for p in result.problems] == ["revocations"]
    assert not result.revocation_checked


def test_revocation_list_cannot_pass_as_a_notice(tmp_path: Path, signer: KeySigner) -> None:
    rev_path = write_envelope(sign_revocations(RevocationList(WHEN, ()), signer), tmp_path / "rev.json")
    result = verify_notice(rev_path, trusted_keys=[signer.public_key])
    assert [p.kind for p in result.problems] == ["payload"]


def test_snippet_is_yaml_with_the_notice_numbers(published: tuple[Path, Path, NoticeContent]) -> None:
    content = published[2]
    text = snippet(content)
    front, body = text.split("---\n")[1], text.split("---\n")[2]
    data = yaml.safe_load(front)
    assert data == model_index(content)
    (result,) = data["model-index"][0]["results"]
    assert data["model-index"][0]["name"] == "tiny"
    assert result["dataset"]["revision"] == "ab" * 32
    vcr = next(m for m in result["metrics"] if m["args"]["category"] == "vcr")
    assert vcr["value"] == 0.05 and vcr["args"]["ci95_high"] == 0.1392 and vcr["args"]["grade"] == "Good"
    assert "img.shields.io/badge/weighbridge-restricted%20api-orange" in body


def test_grades_from_a_graded_report() -> None:
    report = {
        "suites": {
            "hazards": {
                "version": "1.0.0",
                "content_hash": "cd" * 32,
                "categories": [
                    {"id": "hate", "name": "Hate", "n": 60, "unsafe": 6, "unsafe_rate": 0.1, "ci_low": 0.04,
                     "ci_high": 0.2, "grade": "Fair", "grade_settled": False,
                     "comparisons": [{"reference": "gemma-3-270m", "ratio": 2.0, "ratio_low": 1.1, "ratio_high": 3.5,
                                      "grade": "Fair"}]},
                    {"id": "privacy", "name": "Privacy", "n": 60, "unsafe": 0, "unsafe_rate": 0.0, "ci_low": 0.0,
                     "ci_high": 0.06, "grade": None, "grade_settled": False, "comparisons": []},
                ],
            }
        }
    }  # fmt: skip
    hate, privacy = grades_from_report(report)
    assert (hate.grade, hate.reference, hate.ratio, hate.ratio_high) == ("Fair", "gemma-3-270m", 2.0, 3.5)
    assert privacy.grade is None and privacy.ratio is None


def test_a_notice_must_bind_files(tmp_path: Path, signer: KeySigner) -> None:
    from weighbridge.errors import WeighbridgeError

    content = replace(make_content(make_model(tmp_path), signer), files=())
    with pytest.raises(WeighbridgeError, match="no model files"):
        build_notice(content)


def test_inconsistent_signed_notice_is_reported(tmp_path: Path, signer: KeySigner) -> None:
    """Even correctly signed, a statement whose subject and file list disagree is not valid."""
    statement = build_notice(make_content(make_model(tmp_path), signer))
    lying = Statement((("weights.gguf", "00" * 32),), statement.predicate)
    path = write_notice(sign_notice(lying, signer), tmp_path)
    result = verify_notice(path, trusted_keys=[signer.public_key])
    assert [p.message for p in result.problems] == ["The notice's subject list and its model files disagree"]
