"""`weighbridge reviews` commands (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the reviews commands land; adds nothing."""
