"""The authorization matrix: every API route called as every role and as nobody, and the set of
callers let through compared with the table below, exactly.

The route list comes from the app (its OpenAPI document), so a new route without a row here fails
`test_every_route_has_a_row` until someone decides who may call it. "Let through" means anything but the refusals of
`api.security` (401 unauthenticated for nobody, 403 forbidden for a role); what happens after that
(200, 404, 409 because the review is in the wrong state) is the other tests' business, except a
5xx, which is always a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import ROLE_USER, ApiTeam, make_api_team, store_url
from tests.test_notice import make_content, make_model
from weighbridge.notice import build_notice, sign_notice
from weighbridge.services.orgkey import organisation_signer
from weighbridge.store.notice_schema import save_notice

NOBODY = "anonymous"
ROLES = ("submitter", "evaluator", "approver", "auditor", "admin")
EVERY_ROLE = frozenset(ROLES)
EVERYONE = EVERY_ROLE | {NOBODY}
V1 = "/api/v1"

# (method, path) -> who may call it. Workflow actions follow workflow.states.RULES; the rest
# follows the CLI's own checks (revoke: approver or admin) or the API's (ledger: auditor, admin).
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", f"{V1}/auth/login"): EVERYONE,
    ("POST", f"{V1}/auth/logout"): EVERY_ROLE,
    ("GET", f"{V1}/auth/me"): EVERY_ROLE,
    ("GET", f"{V1}/auth/tokens"): EVERY_ROLE,
    ("POST", f"{V1}/auth/tokens"): EVERY_ROLE,
    ("DELETE", f"{V1}/auth/tokens/{{token_id}}"): EVERY_ROLE,
    ("PUT", f"{V1}/users/{{name}}/password"): frozenset({"admin"}),
    ("GET", f"{V1}/reviews"): EVERY_ROLE,
    ("POST", f"{V1}/reviews"): frozenset({"submitter", "evaluator"}),
    ("GET", f"{V1}/reviews/{{review_id}}"): EVERY_ROLE,
    ("GET", f"{V1}/reviews/{{review_id}}/verify"): EVERY_ROLE,
    ("POST", f"{V1}/reviews/{{review_id}}/advance"): frozenset({"evaluator"}),
    ("POST", f"{V1}/reviews/{{review_id}}/pause"): frozenset({"evaluator"}),
    ("POST", f"{V1}/reviews/{{review_id}}/resume"): frozenset({"submitter", "evaluator"}),
    ("POST", f"{V1}/reviews/{{review_id}}/propose"): frozenset({"evaluator", "approver"}),
    ("POST", f"{V1}/reviews/{{review_id}}/approve"): frozenset({"approver"}),
    ("POST", f"{V1}/reviews/{{review_id}}/revise"): frozenset({"evaluator", "approver"}),
    ("POST", f"{V1}/reviews/{{review_id}}/decide"): frozenset({"approver"}),
    ("POST", f"{V1}/reviews/{{review_id}}/reject"): frozenset({"approver"}),
    ("POST", f"{V1}/reviews/{{review_id}}/withdraw"): frozenset({"submitter"}),
    ("POST", f"{V1}/reviews/{{review_id}}/publish"): frozenset({"approver"}),
    ("GET", f"{V1}/submissions"): EVERY_ROLE,
    ("POST", f"{V1}/submissions"): frozenset({"submitter", "evaluator"}),
    ("GET", f"{V1}/submissions/{{submission_id}}"): EVERY_ROLE,
    ("GET", f"{V1}/submissions/{{submission_id}}/findings"): EVERY_ROLE,
    ("POST", f"{V1}/submissions/{{submission_id}}/findings"): frozenset({"evaluator"}),
    ("GET", f"{V1}/ledger/entries"): frozenset({"auditor", "admin"}),
    ("GET", f"{V1}/ledger/export"): frozenset({"auditor", "admin"}),
    ("GET", f"{V1}/ledger/verify"): frozenset({"auditor", "admin"}),
    ("GET", f"{V1}/notices"): EVERY_ROLE,
    ("GET", f"{V1}/notices/{{notice_id}}"): EVERY_ROLE,
    ("POST", f"{V1}/notices/{{notice_id}}/revoke"): frozenset({"approver", "admin"}),
    ("POST", f"{V1}/public/notices/verify"): EVERYONE,
    ("GET", f"{V1}/public/notices/{{notice_id}}/verify"): EVERYONE,
}

# A plausible body for each route that takes one, so a caller let through gets past validation.
BODIES: dict[str, Any] = {
    f"{V1}/auth/login": {"username": "carl", "password": "correct horse battery staple"},
    f"{V1}/auth/tokens": {"label": "matrix"},
    f"{V1}/users/{{name}}/password": {"password": "a new long password"},
    f"{V1}/reviews": {"submission": "{submission_id}"},
    f"{V1}/reviews/{{review_id}}/pause": {"reason": "waiting on the lab"},
    f"{V1}/reviews/{{review_id}}/revise": {"reason": "x"},
    f"{V1}/reviews/{{review_id}}/reject": {"reason": "x"},
    f"{V1}/reviews/{{review_id}}/propose": {"release": "open_access", "rationale": "x"},
    f"{V1}/submissions": {"path": "missing.gguf"},
    f"{V1}/submissions/{{submission_id}}/findings": {"kind": "matrix", "severity": "low", "message": "x"},
    f"{V1}/notices/{{notice_id}}/revoke": {"reason": "matrix"},
}


def api_routes(team: ApiTeam) -> list[tuple[str, str]]:
    """Every operation the app publishes (its OpenAPI document is built from its routes, and reading
    it works whichever way this FastAPI version nests included routers)."""
    paths = team.app.openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiTeam]:
    yield from make_api_team(store_url(request.param, tmp_path, request), tmp_path)


def test_every_route_has_a_row(team: ApiTeam) -> None:
    routes = set(api_routes(team))
    assert routes - set(EXPECTED) == set(), "routes with no row in EXPECTED: decide who may call them"
    assert set(EXPECTED) - routes == set(), "rows in EXPECTED for routes that no longer exist"


def test_each_route_lets_through_exactly_its_callers(team: ApiTeam, tmp_path: Path, isolated_home: Path) -> None:
    c = team.client
    signer = organisation_signer(isolated_home, notice=lambda _: None)
    notice_id = save_notice(
        team.store, sign_notice(build_notice(make_content(make_model(tmp_path), signer)), signer)
    ).id
    review_id = c.post(f"{V1}/reviews", headers=team.login("sam"), json={"submission": team.submission_id}).json()["id"]
    ids = {
        "review_id": review_id,
        "submission_id": team.submission_id,
        "notice_id": notice_id,
        "token_id": "00000000-0000-0000-0000-000000000000",
        "name": "carl",
    }
    sessions = {role: team.login(user) for role, user in ROLE_USER.items()}
    found: dict[tuple[str, str], frozenset[str]] = {}
    failures: list[str] = []
    for method, path in api_routes(team):
        url = path.format(**ids)
        body = BODIES.get(path)
        if isinstance(body, dict):
            body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
        through = set()
        for who in (NOBODY, *ROLES):
            headers: dict[str, str] = {}
            if who != NOBODY:
                # Logging out ends the session it is called with: give that call a session of its own.
                headers = team.login(ROLE_USER[who]) if path.endswith("/logout") else sessions[who]
            r = c.request(method, url, headers=headers, json=body)
            if r.status_code >= 500:
                failures.append(f"{method} {path} as {who}: {r.status_code} {r.text[:200]}")
            problem = r.headers.get("content-type") == "application/problem+json"
            kind = str(r.json().get("type", "")) if problem else ""
            refused_as = 401 if who == NOBODY else 403
            if r.status_code == refused_as and kind.rsplit("/", 1)[-1] in ("unauthenticated", "forbidden"):
                continue
            if r.status_code in (401, 403) and who != NOBODY and kind.endswith("/unauthenticated"):
                failures.append(f"{method} {path} as {who}: the session was refused ({r.text[:200]})")
            through.add(who)
        found[(method, path)] = frozenset(through)
    assert not failures, "\n".join(failures)
    wrong = {
        f"{m} {p}": f"let through {sorted(found[(m, p)])}, expected {sorted(EXPECTED[(m, p)])}"
        for m, p in found
        if found[(m, p)] != EXPECTED.get((m, p))
    }
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))
