"""The REST API end to end, on SQLite and on the test PostgreSQL server: login and its limits,
problem details, a review walked through the workflow with the CLI's gates and two-person rule,
findings, the ledger, and notices with the public verify endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.api_support import PASSWORD, ApiTeam, make_api_team, store_url
from tests.evidence_fixture import tiny_gguf
from tests.test_notice import make_content, make_model
from weighbridge.notice import build_notice, sign_notice
from weighbridge.services.ledger import read_entries, verify_store
from weighbridge.services.orgkey import organisation_signer
from weighbridge.store.notice_schema import NoticeRow, save_notice
from weighbridge.workflow.service import verify_review

PROBLEM = "application/problem+json"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiTeam]:
    yield from make_api_team(store_url(request.param, tmp_path, request), tmp_path)


def test_openapi_is_published(team: ApiTeam) -> None:
    spec = team.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/reviews/{review_id}/approve" in spec["paths"]
    assert "/api/v1/public/notices/verify" in spec["paths"]


def test_login_me_logout(team: ApiTeam) -> None:
    headers = team.login("eve")
    me = team.client.get("/api/v1/auth/me", headers=headers).json()
    assert me == {"name": "eve", "roles": ["evaluator"], "key_id": me["key_id"], "via": "session", "can_sign": True}
    assert team.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    after = team.client.get("/api/v1/auth/me", headers=headers)
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    assert after.json()["title"] == "Authentication required"


def test_wrong_password_and_unknown_user_fail_alike(team: ApiTeam) -> None:
    wrong = team.client.post("/api/v1/auth/login", json={"username": "eve", "password": "not the password"})
    nobody = team.client.post("/api/v1/auth/login", json={"username": "nobody", "password": "not the password"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"] == "Wrong user name or password"


def test_wrong_key_passphrase_refuses_login(team: ApiTeam) -> None:
    r = team.client.post(
        "/api/v1/auth/login", json={"username": "eve", "password": PASSWORD, "key_passphrase": "wrong passphrase"}
    )
    assert r.status_code == 401
    assert "does not open" in r.json()["detail"]


def test_uploaded_key_must_be_the_users_own(team: ApiTeam, isolated_home: Path) -> None:
    bobs_key = (isolated_home / "keys" / "bob.pem").read_text()
    r = team.client.post("/api/v1/auth/login", json={"username": "eve", "password": PASSWORD, "key_pem": bobs_key})
    assert r.status_code == 401
    assert "not the key registered for eve" in r.json()["detail"]
    evesk = (isolated_home / "keys" / "eve.pem").read_text()
    ok = team.client.post("/api/v1/auth/login", json={"username": "eve", "password": PASSWORD, "key_pem": evesk})
    assert ok.status_code == 200


def test_failed_logins_are_rate_limited(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for t in make_api_team(store_url("sqlite", tmp_path, request), tmp_path, login_attempts=3):
        for _ in range(3):
            bad = t.client.post("/api/v1/auth/login", json={"username": "ann", "password": "wrong password!"})
            assert bad.status_code == 401
        limited = t.client.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert limited.headers["content-type"] == PROBLEM


def test_sessions_expire(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for t in make_api_team(store_url("sqlite", tmp_path, request), tmp_path, session_ttl=timedelta(seconds=-1)):
        headers = t.login("eve")
        assert t.client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_tokens_expire_revoke_and_sign_only_with_the_key_passphrase(team: ApiTeam) -> None:
    session = team.login("eve")
    made = team.client.post("/api/v1/auth/tokens", headers=session, json={"label": "ci", "days": 2})
    assert made.status_code == 201
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    assert team.client.get("/api/v1/auth/me", headers=token).json()["can_sign"] is False
    finding = {"kind": "redteam.jailbreak", "severity": "high", "message": "complies under a role-play wrapper"}
    url = f"/api/v1/submissions/{team.submission_id}/findings"
    locked = team.client.post(url, headers=token, json=finding)
    assert locked.status_code == 403
    assert locked.json()["type"].endswith("/key-locked")
    signed = team.client.post(url, headers=token | {"Weighbridge-Key-Passphrase": PASSWORD}, json=finding)
    assert signed.status_code == 201, signed.text
    listed = team.client.get("/api/v1/auth/tokens", headers=session).json()
    assert [t["label"] for t in listed] == ["ci"]
    assert "token" not in listed[0]
    assert team.client.delete(f"/api/v1/auth/tokens/{listed[0]['id']}", headers=session).json()["revoked"] is True
    assert team.client.get("/api/v1/auth/me", headers=token).status_code == 401


def test_validation_errors_are_problems(team: ApiTeam) -> None:
    r = team.client.post("/api/v1/auth/login", json={"username": "eve"})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["loc"] == ["body", "password"]
    assert team.client.get("/api/v1/nowhere").headers["content-type"] == PROBLEM


def test_a_review_through_the_api_keeps_the_cli_rules(team: ApiTeam) -> None:
    c = team.client
    sam, eve, ann, bob, ovr = (team.login(n) for n in ("sam", "eve", "ann", "bob", "ovr"))
    opened = c.post("/api/v1/reviews", headers=sam, json={"submission": team.submission_id[:8]})
    assert opened.status_code == 201, opened.text
    rid = opened.json()["id"]
    queue = c.get("/api/v1/reviews", headers=eve).json()
    assert [(r["id"], r["state"]) for r in queue] == [(rid, "submitted")]
    assert 29 < queue[0]["days_left"] <= 30

    # The evidence gate refuses as the CLI does, naming what is missing and how to produce it.
    gated = c.post(f"/api/v1/reviews/{rid}/advance", headers=eve, json={})
    assert gated.status_code == 409
    assert "evidence is missing" in gated.json()["detail"]
    assert "weighbridge custody deposit" in gated.json()["fix"]
    # No weights in this test: an admin who is also an evaluator overrides the gated steps.
    for gated_step in (True, False, True, True):
        body = {"override": "no weights in this test"} if gated_step else {}
        step = c.post(f"/api/v1/reviews/{rid}/advance", headers=ovr, json=body)
        assert step.status_code == 200, step.text
    assert step.json()["state"] == "findings"

    bad = c.post(f"/api/v1/reviews/{rid}/propose", headers=eve, json={"release": "whatever", "rationale": "x"})
    assert bad.status_code == 422
    proposal = {"release": "research_release", "rationale": "fair grades; dual-use uplift unclear"}
    assert c.post(f"/api/v1/reviews/{rid}/propose", headers=eve, json=proposal).status_code == 200
    early = c.post(f"/api/v1/reviews/{rid}/decide", headers=ann)
    assert early.status_code == 409
    assert "2 different approvers" in early.json()["detail"]
    assert c.post(f"/api/v1/reviews/{rid}/approve", headers=ann, json={}).status_code == 200
    again = c.post(f"/api/v1/reviews/{rid}/approve", headers=ann, json={})
    assert again.status_code == 409
    assert "already approved" in again.json()["detail"]
    assert c.post(f"/api/v1/reviews/{rid}/approve", headers=bob, json={"note": "ok"}).status_code == 200
    decided = c.post(f"/api/v1/reviews/{rid}/decide", headers=ann)
    assert decided.status_code == 200
    assert decided.json()["state"] == "decided"
    # Publishing needs this submission's graded runs, which a file-less test submission lacks.
    unpublished = c.post(f"/api/v1/reviews/{rid}/publish", headers=bob)
    assert unpublished.status_code == 409, unpublished.text

    shown = c.get(f"/api/v1/reviews/{rid}", headers=sam).json()
    assert [e["actor"] for e in shown["events"]][-4:] == ["eve", "ann", "bob", "ann"]
    assert c.get(f"/api/v1/reviews/{rid}/verify", headers=sam).json() == {"valid": True, "problems": []}
    assert verify_review(team.store, rid) == []
    # Each action is an entry signed by its actor's own key (verify_review checks key and role).
    actors = [e.actor for e in read_entries(team.store) if e.action.startswith("review.")]
    assert actors[-3:] == ["ann", "bob", "ann"]


def test_findings_are_signed_entries_beside_inspection(team: ApiTeam) -> None:
    eve = team.login("eve")
    url = f"/api/v1/submissions/{team.submission_id}/findings"
    finding = {"kind": "redteam.jailbreak", "severity": "high", "message": "complies under role-play", "file": None}
    added = team.client.post(url, headers=eve, json=finding)
    assert added.status_code == 201, added.text
    assert added.json()["actor"] == "eve"
    listed = team.client.get(url, headers=team.login("aud")).json()
    assert [(f["source"], f["kind"], f["actor"]) for f in listed] == [("review", "redteam.jailbreak", "eve")]
    entry = read_entries(team.store, subject=team.submission_id)[-1]
    assert (entry.action, entry.actor) == ("finding.add", "eve")
    missing = team.client.post("/api/v1/submissions/ffffffff/findings", headers=eve, json=finding)
    assert missing.status_code == 404


def test_ledger_export_and_verify(team: ApiTeam) -> None:
    aud = team.login("aud")
    verified = team.client.get("/api/v1/ledger/verify", headers=aud).json()
    assert verified["valid"] is True
    assert verified["entries"] == len(read_entries(team.store))
    export = team.client.get("/api/v1/ledger/export", headers=aud)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert export.text.count("\n") >= verified["entries"]
    entries = team.client.get("/api/v1/ledger/entries?last=2", headers=aud).json()
    assert len(entries) == 2
    assert verify_store(team.store).ok


def test_submission_from_the_intake_folder(team: ApiTeam, tmp_path: Path) -> None:
    assert team.settings.intake_root is not None
    tiny_gguf(team.settings.intake_root / "m.gguf", "api-test-model")
    tiny_gguf(tmp_path / "elsewhere.gguf", "outside-model")
    (team.settings.intake_root / "link.gguf").symlink_to(tmp_path / "elsewhere.gguf")
    sam = team.login("sam")
    for escape in ("../api.db", "/etc/passwd", "link.gguf"):  # a link out of the folder counts as outside
        outside = team.client.post("/api/v1/submissions", headers=sam, json={"path": escape})
        assert outside.status_code == 403, escape
    made = team.client.post("/api/v1/submissions", headers=sam, json={"path": "m.gguf"})
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    assert made.json()["files"][0]["sha256"]
    entry = read_entries(team.store, subject=sid)
    assert {e.action for e in entry} >= {"submission", "findings"}
    assert {e.actor for e in entry if e.action in ("submission", "findings")} == {"sam"}
    listed = team.client.get("/api/v1/submissions", headers=sam).json()
    assert sid in [s["id"] for s in listed]


def _publish_notice(team: ApiTeam, tmp_path: Path, home: Path) -> str:
    signer = organisation_signer(home, notice=lambda _: None)
    envelope = sign_notice(build_notice(make_content(make_model(tmp_path), signer)), signer)
    return save_notice(team.store, envelope, review_id="r-1").id


def test_notices_show_revoke_and_public_verify(team: ApiTeam, tmp_path: Path, isolated_home: Path) -> None:
    nid = _publish_notice(team, tmp_path, isolated_home)
    c = team.client
    public = c.get(f"/api/v1/public/notices/{nid}/verify")  # no login
    assert public.status_code == 200
    assert public.json()["valid"] is True
    assert public.json()["revocation_checked"] is True
    shown = c.get(f"/api/v1/notices/{nid}", headers=team.login("sam")).json()
    assert shown["statement"]["predicateType"]
    assert shown["revoked_at"] is None
    with team.store.session() as s:
        file_bytes = s.get_one(NoticeRow, nid).envelope
    posted = c.post("/api/v1/public/notices/verify", content=file_bytes, headers={"Content-Type": "application/json"})
    assert posted.json()["valid"] is True, posted.text
    envelope = json.loads(file_bytes)
    tampered = json.dumps(envelope | {"payload": envelope["payload"][:-8] + "AAAAAAA="}).encode()
    assert c.post("/api/v1/public/notices/verify", content=tampered).json()["valid"] is False

    refused = c.post(f"/api/v1/notices/{nid}/revoke", headers=team.login("eve"), json={"reason": "x"})
    assert refused.status_code == 403
    revoked = c.post(f"/api/v1/notices/{nid}/revoke", headers=team.login("ann"), json={"reason": "wrong weights"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revocation_reason"] == "wrong weights"
    after = c.get(f"/api/v1/public/notices/{nid}/verify").json()
    assert after["valid"] is False
    assert after["problems"][0]["kind"] == "revoked"
    assert (team.settings.notices_dir / "revocations.dsse.json").is_file()
    assert read_entries(team.store, subject=nid)[-1].actor == "ann"
