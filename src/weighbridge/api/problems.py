"""Errors as RFC 9457 problem details (`application/problem+json`).

A `WeighbridgeError` already says what failed and how to fix it; the API passes both on (`detail`
and `fix`) instead of inventing its own wording, so the CLI and the API refuse in the same words.
Anything else that escapes a route is logged with its traceback on the server and answered as a
plain 500 problem with no internals in it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from weighbridge.errors import WeighbridgeError

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://weighbridge.dev/problems/"
log = logging.getLogger("weighbridge.api")


class Problem(BaseModel):
    """The RFC 9457 members weighbridge uses, plus `fix` (how to put it right) and `errors`
    (each invalid field, for validation problems)."""

    type: str
    title: str
    status: int
    detail: str = ""
    fix: str = ""
    errors: list[dict[str, Any]] | None = None


class ApiProblem(Exception):
    """Raised by routes for a refusal with its own HTTP status (401, 403, 404, 409, 429)."""

    def __init__(
        self, status: int, kind: str, title: str, detail: str = "", fix: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail or title)
        self.status, self.kind, self.title, self.detail, self.fix = status, kind, title, detail, fix
        self.headers = headers or {}


def not_found(exc: WeighbridgeError) -> ApiProblem:
    return ApiProblem(404, "not-found", "Not found", exc.problem, exc.fix)


def problem_response(status: int, kind: str, title: str, detail: str = "", fix: str = "", **extra: Any) -> JSONResponse:
    body = Problem(type=TYPE_BASE + kind, title=title, status=status, detail=detail, fix=fix, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE)


# Documented on every route, so clients (and schemathesis) know the shape of a refusal.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "A refusal, as RFC 9457 problem details", "content": {MEDIA_TYPE: {}}},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        response = problem_response(exc.status, exc.kind, exc.title, exc.detail, exc.fix)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(WeighbridgeError)
    async def _weighbridge(_: Request, exc: WeighbridgeError) -> JSONResponse:
        # What is left after the routes' own look-ups and role checks: the request is well formed
        # and allowed, but the review's state or evidence does not permit it now.
        return problem_response(409, "refused", "Refused", exc.problem, exc.fix)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem_response(
            422, "invalid-request", "Invalid request", f"{where}: {first['msg']}", "See /openapi.json", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(exc.status_code, kind, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "internal-error", "Internal error", "The server failed on this request", "Report it with the time"
        )
