"""The weighbridge REST API: `create_app(store or URL, settings)` builds one FastAPI app.

The app holds one `Store` and the in-memory security state (unlocked session keys, login counters),
so it is meant to run as one server process (`weighbridge serve`); docs/api.md explains why and
what a second process would need. OpenAPI 3 is served at /openapi.json, errors are RFC 9457
problem details (`api.problems`), and who may call each route is declared in its signature
(`api.security`) and checked by tests/test_api_authz.py against every role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from weighbridge import __version__
from weighbridge.api import problems
from weighbridge.api.routes_auth import router as auth_router
from weighbridge.api.routes_records import router as records_router
from weighbridge.api.routes_reviews import router as reviews_router
from weighbridge.api.security import ApiState, KeyRing, RateLimiter
from weighbridge.api.settings import ApiSettings
from weighbridge.store.db import Store


def create_app(store: Store | str, settings: ApiSettings | None = None) -> FastAPI:
    """An app over `store` (a `Store`, or a database URL opened here and closed at shutdown)."""
    settings = settings or ApiSettings()
    owned = isinstance(store, str)
    opened = Store(store) if isinstance(store, str) else store

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            opened.close()

    app = FastAPI(
        title="weighbridge",
        version=__version__,
        description="Pre-release safety review of open-weight AI models: reviews, findings, decisions, "
        "the signed ledger and notices. Log in at /api/v1/auth/login; errors are RFC 9457 problem details.",
        lifespan=lifespan,
    )
    window = settings.login_window.total_seconds()
    app.state.weighbridge = ApiState(
        store=opened,
        settings=settings,
        keyring=KeyRing(),
        login_by_address=RateLimiter(settings.login_attempts, window),
        failures_by_user=RateLimiter(settings.login_attempts, window),
    )
    problems.install(app)
    app.include_router(auth_router)
    app.include_router(reviews_router)
    app.include_router(records_router)
    return app
