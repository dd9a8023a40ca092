"""schemathesis fuzzes every operation of the OpenAPI document, logged in (as an evaluator and
admin) and not: no answer is a 5xx. Bounded (a few examples per operation) to stay quick; checking
each response against its documented schema is left for later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.api_support import ApiTeam, make_api_team, store_url

EXAMPLES = 8


@pytest.fixture
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiTeam]:
    yield from make_api_team(store_url("sqlite", tmp_path, request), tmp_path)


@pytest.mark.parametrize("who", ["ovr", None])
def test_no_operation_answers_5xx(team: ApiTeam, who: str | None) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", team.app)
    headers = team.login(who) if who else {}
    failures: list[str] = []
    calls: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            if case.path.endswith("/logout"):
                return  # would end the session the other operations use
            response = case.call(headers=headers)
            calls.append(f"{case.method} {case.path}")
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        run()
    assert not failures, "\n".join(failures[:20])
    assert operations >= 30
    assert len(set(calls)) >= operations - 1  # every operation was called (logout is skipped)
