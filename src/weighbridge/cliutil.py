"""What every `weighbridge` command shares: consoles, one-line errors, common options, progress.

Command modules (`cli.py`, `cli_inspect.py`, `cli_custody.py`, ...) import from here, so none of them
imports another and each area's commands live beside its own code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from weighbridge.errors import WeighbridgeError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="WEIGHBRIDGE_DB",
        help="Database URL (default: SQLite in $WEIGHBRIDGE_HOME, ~/.weighbridge). "
        "E.g. postgresql+psycopg://user@host/db",
        show_default=False,
    ),
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most N items per category (a smoke run still covers all).")
]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="CPU threads for llama.cpp (default: all).")
]
MaxTokensOption = Annotated[int, typer.Option("--max-tokens", min=1, max=8192, help="Tokens generated per answer.")]
SuiteOption = Annotated[str, typer.Option("--suite", help="Suite to run.")]


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a user-fixable error into one line on stderr and exit code 1; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except WeighbridgeError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err.print("[yellow]Interrupted.[/] Finished samples are saved; rerun the same command to resume.")
            raise typer.Exit(code=130) from None

    return wrapper


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f} items/s" if task.speed else "– items/s", style="cyan")


class RichProgress:
    """Rich rendering of the runner's progress: bar, done/total, items/s, elapsed, ETA."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: Any = None

    def start(self, total: int, done: int, description: str) -> None:
        if done:
            err.print(f"Resuming: {done} of {total} samples already journaled.")
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def stop(self) -> None:
        self._progress.stop()


def open_store(db: str | None) -> Any:
    from weighbridge.store.db import Store, default_url

    return Store(db or default_url())
