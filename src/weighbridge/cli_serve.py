"""`weighbridge serve`: run the REST API (uvicorn) over this installation's store.

One process, one worker: the API keeps each session's unlocked signing key in memory, so a second
worker would not know the sessions of the first (docs/api.md). Loopback by default; put a TLS
reverse proxy in front before listening anywhere else, since passwords and key passphrases cross
the wire at login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weighbridge.cliutil import DbOption, err, friendly_errors


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@friendly_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    intake_root: Annotated[
        Path | None,
        typer.Option(
            "--intake-root",
            help="Folder the API may submit models from (POST /api/v1/submissions); default: none, refused.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    session_hours: Annotated[float, typer.Option("--session-hours", min=0.1, help="Login session lifetime.")] = 8.0,
    db: DbOption = None,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, interactive docs at /docs)."""
    from datetime import timedelta

    import uvicorn

    from weighbridge.api import ApiSettings, create_app
    from weighbridge.cliutil import open_store

    store = open_store(db)
    settings = ApiSettings(session_ttl=timedelta(hours=session_hours), intake_root=intake_root)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] listening on {host}: put a TLS proxy in front (passwords cross the wire)")
    try:
        uvicorn.run(create_app(store, settings), host=host, port=port, workers=1, log_level="info")
    finally:
        store.close()
