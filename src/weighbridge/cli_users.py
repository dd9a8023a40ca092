"""`weighbridge user ...`: the people who act in reviews, their roles and their keys.

The CLI acts as the user whose key it is given (WEIGHBRIDGE_USER_KEY, or WEIGHBRIDGE_USER=NAME for
$WEIGHBRIDGE_HOME/keys/NAME.pem); a fresh store makes a local admin on first use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.services.identity import User

users = typer.Typer(
    name="user",
    help="Users, roles (submitter, evaluator, approver, auditor, admin) and their Ed25519 keys. "
    "Act as a user with WEIGHBRIDGE_USER_KEY=key.pem (+ WEIGHBRIDGE_USER_PASSPHRASE) or WEIGHBRIDGE_USER=NAME.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="user")


def _new_passphrase(name: str) -> str:
    env = os.environ.get("WEIGHBRIDGE_NEW_USER_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        raise WeighbridgeError(
            f"No passphrase for {name}'s new key and no terminal to ask for one",
            "Set WEIGHBRIDGE_NEW_USER_PASSPHRASE",
        )
    value: str = typer.prompt(f"Passphrase for {name}'s new key", hide_input=True, confirmation_prompt=True)
    return value


@users.command("add")
@friendly_errors
def add(
    name: Annotated[str, typer.Argument(help="User name (lowercase letters, digits, - _ .).")],
    role: Annotated[list[str], typer.Option("--role", help="A role; repeat for several.")],
    key_out: Annotated[
        Path | None,
        typer.Option("--key-out", help="Where to write the new private key (default $WEIGHBRIDGE_HOME/keys/NAME.pem)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Add a user (admins only): makes their key pair, writes the encrypted private key, registers the public key."""
    from weighbridge.services.identity import add_user, current_actor, parse_roles, require_admin

    parse_roles(role)  # a typo in a role fails before any prompt
    store = open_store(db)
    try:
        admin = current_actor(store, err.print)
        require_admin(admin)  # before asking for a passphrase
        user, path = add_user(store, admin, name, role, _new_passphrase(name), key_out)
    finally:
        store.close()
    out.print(f"Added {user.name} ({', '.join(sorted(user.roles))}), key id {user.key_id[:16]}")
    out.print(f"Private key: {path} (give it to {user.name}; it opens with the passphrase just set)")


@users.command("list")
@friendly_errors
def list_(db: DbOption = None) -> None:
    """List users and their roles."""
    from weighbridge.services.identity import list_users

    store = open_store(db)
    try:
        rows = list_users(store)
    finally:
        store.close()
    if not rows:
        out.print("No users yet: the first command that acts creates the local admin.")
        return
    table = Table("name", "roles", "key id", "added by")
    for u in rows:
        table.add_row(u.name, ", ".join(sorted(u.roles)), u.key_id[:16], u.created_by)
    out.print(table)


@users.command("show")
@friendly_errors
def show(name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = None) -> None:
    """Show one user: roles, key id and public key."""
    from weighbridge.services.identity import get_user

    store = open_store(db)
    try:
        user = get_user(store, name)
    finally:
        store.close()
    _print_user(user)


@users.command("whoami")
@friendly_errors
def whoami(db: DbOption = None) -> None:
    """Show the user this shell acts as (from WEIGHBRIDGE_USER_KEY / WEIGHBRIDGE_USER, or the local admin)."""
    from weighbridge.services.identity import current_actor, get_user

    store = open_store(db)
    try:
        user = get_user(store, current_actor(store, err.print).name)
    finally:
        store.close()
    _print_user(user)


@users.command("password")
@friendly_errors
def password(name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = None) -> None:
    """Set a user's login password for the API (`weighbridge serve`): admins for anyone, users for themselves.

    Read from WEIGHBRIDGE_NEW_PASSWORD, else asked twice. The password only logs in; actions stay
    signed by the user's key, which the API opens at login with the key passphrase."""
    from weighbridge.services.accounts import set_password
    from weighbridge.services.identity import current_actor

    store = open_store(db)
    try:
        actor = current_actor(store, err.print)
        secret = os.environ.get("WEIGHBRIDGE_NEW_PASSWORD")
        if not secret:
            if not sys.stdin.isatty():
                raise WeighbridgeError(f"No password for {name} and no terminal to ask", "Set WEIGHBRIDGE_NEW_PASSWORD")
            secret = typer.prompt(f"API password for {name}", hide_input=True, confirmation_prompt=True)
        set_password(store, actor, name, secret)
    finally:
        store.close()
    out.print(f"Password set for {name}; log in at POST /api/v1/auth/login")


def _print_user(user: User) -> None:
    out.print(f"name:       {user.name}")
    out.print(f"roles:      {', '.join(sorted(user.roles))}")
    out.print(f"key id:     {user.key_id}")
    out.print(f"public key: {user.public_key.hex()}")
    out.print(f"added by:   {user.created_by}")
