"""Login, logout, who am I, API tokens, and passwords.

Login checks the password (argon2) and opens the user's signing key in one step, so that a session
that exists can always sign: there is no half-logged-in state where reads work and writes fail.
Failed logins are limited per user name and every attempt per client address (`RateLimiter`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from weighbridge.api.problems import PROBLEM_RESPONSES, ApiProblem
from weighbridge.api.security import (
    Admins,
    Anyone,
    StateDep,
    check_key_is_users,
    profile_key,
    unlock_key,
)
from weighbridge.errors import WeighbridgeError
from weighbridge.services import accounts
from weighbridge.services.identity import get_user

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=PROBLEM_RESPONSES)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    key_passphrase: str | None = Field(
        default=None, max_length=1024, description="Opens the signing key; default: the password."
    )
    key_pem: str | None = Field(
        default=None,
        max_length=16384,
        description="Your encrypted key file (PEM); default: the server's keys folder copy. Never stored.",
    )


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    user: str
    roles: list[str]
    expires_at: datetime


class MeOut(BaseModel):
    name: str
    roles: list[str]
    key_id: str
    via: str
    can_sign: bool


class TokenRequest(BaseModel):
    label: str = Field(min_length=1, max_length=200)
    days: int | None = Field(default=None, ge=1, le=3650, description="Lifetime in days (capped by the server).")


class TokenOut(BaseModel):
    id: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked: bool


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only as a digest.")


class PasswordRequest(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


def _token_out(t: accounts.ApiToken) -> TokenOut:
    return TokenOut(
        id=t.id, label=t.label, created_at=t.created_at, expires_at=t.expires_at, revoked=bool(t.revoked_at)
    )


def _too_many(wait: float) -> ApiProblem:
    seconds = max(1, int(wait + 0.999))
    return ApiProblem(
        429,
        "too-many-logins",
        "Too many login attempts",
        f"Wait {seconds} s before trying again",
        "Check the user name and password",
        headers={"Retry-After": str(seconds)},
    )


@router.post("/auth/login", response_model=SessionOut, summary="Log in (public): a session that can sign")
def login(body: LoginRequest, request: Request, st: StateDep) -> SessionOut:
    address = request.client.host if request.client else "unknown"
    wait = max(st.login_by_address.blocked_for(address), st.failures_by_user.blocked_for(body.username))
    if wait:
        raise _too_many(wait)
    st.login_by_address.hit(address)
    if not accounts.check_password(st.store, body.username, body.password, st.settings.argon2.hasher()):
        st.failures_by_user.hit(body.username)
        raise ApiProblem(401, "login-failed", "Login failed", "Wrong user name or password")
    user = get_user(st.store, body.username)
    passphrase = body.key_passphrase if body.key_passphrase is not None else body.password
    try:
        if body.key_pem is not None:
            signer = unlock_key(body.key_pem.encode(), passphrase, "uploaded")
        else:
            signer = unlock_key(profile_key(st.settings.keys_dir, user.name), passphrase, "on the server")
        check_key_is_users(signer, user)
    except ApiProblem:
        st.failures_by_user.hit(body.username)
        raise
    session, secret = accounts.start_session(st.store, user.name, st.settings.session_ttl)
    st.keyring.put(session.id, signer)
    return SessionOut(token=secret, user=user.name, roles=sorted(user.roles), expires_at=session.expires_at)


@router.post("/auth/logout", status_code=204, summary="End this session and drop its key")
def logout(principal: Anyone, st: StateDep) -> Response:
    if principal.via == "session":
        accounts.end_session(st.store, principal.credential_id)
        st.keyring.drop(principal.credential_id)
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeOut, summary="Who the token acts as")
def me(principal: Anyone) -> MeOut:
    u = principal.user
    return MeOut(
        name=u.name, roles=sorted(u.roles), key_id=u.key_id, via=principal.via, can_sign=principal.signer is not None
    )


@router.get("/auth/tokens", response_model=list[TokenOut], summary="Your API tokens")
def list_tokens(principal: Anyone, st: StateDep) -> list[TokenOut]:
    return [_token_out(t) for t in accounts.list_tokens(st.store, principal.user.name)]


@router.post("/auth/tokens", response_model=NewTokenOut, status_code=201, summary="Create an API token")
def create_token(body: TokenRequest, principal: Anyone, st: StateDep) -> NewTokenOut:
    ttl = min(timedelta(days=body.days) if body.days else st.settings.token_ttl, st.settings.token_max_ttl)
    token, secret = accounts.create_token(st.store, principal.user.name, body.label, ttl)
    return NewTokenOut(token=secret, **_token_out(token).model_dump())


@router.delete("/auth/tokens/{token_id}", response_model=TokenOut, summary="Revoke one of your API tokens")
def revoke_token(token_id: str, principal: Anyone, st: StateDep) -> TokenOut:
    try:
        return _token_out(accounts.revoke_token(st.store, principal.user.name, token_id))
    except LookupError:
        raise ApiProblem(404, "not-found", "Not found", f"You have no token {token_id}") from None


@router.put("/users/{name}/password", status_code=204, summary="Set a user's login password (admins)")
def set_password(name: str, body: PasswordRequest, principal: Admins, st: StateDep) -> Response:
    try:
        get_user(st.store, name)
    except WeighbridgeError as exc:
        raise ApiProblem(404, "not-found", "Not found", exc.problem, exc.fix) from None
    accounts.set_password(st.store, principal.actor(), name, body.password, st.settings.argon2.hasher())
    return Response(status_code=204)
