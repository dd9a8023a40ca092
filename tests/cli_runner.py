"""The real CLI app run in process (Click's runner): a subprocess per call costs seconds of imports."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from weighbridge.cli import app


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def wb(*args: str, columns: int = 200) -> Run:
    """Run `weighbridge ARGS`; an exception other than an exit is re-raised (a bug, not a user error)."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)
