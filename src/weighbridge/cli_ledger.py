"""`weighbridge ledger` commands (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the ledger commands land; adds nothing."""
