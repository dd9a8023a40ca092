"""What every `weighbridge` command shares: consoles, one-line errors, common options, progress.

Command modules (`cli.py`, `cli_inspect.py`, `cli_custody.py`, ...) import from here, so none of them
imports another and each area's commands live beside its own code.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
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
# Answers are judged on their first 64 tokens by default: enough to tell a refusal from compliance
# and vague compliance from specific uplift, and it keeps a full review with a reference under
# 30 minutes on 2 CPU cores. Deeper reviews raise it.
DEFAULT_MAX_TOKENS = 64
MaxTokensOption = Annotated[int, typer.Option("--max-tokens", min=1, max=8192, help="Tokens generated per answer.")]
ReferenceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reference",
        help="Reference to grade against (repeatable; the first is primary). "
        "Default: gemma-3-270m when installed. See 'weighbridge reference list'.",
        show_default=False,
    ),
]
SuiteOption = Annotated[str, typer.Option("--suite", help="Suite to run.")]


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a user-fixable error into one line on stderr and exit code 1; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except WeighbridgeError as exc:
            # Escaped: a message may quote a TOML table such as [signers."Lab"], not Rich markup.
            err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err.print("[yellow]Interrupted.[/] Finished samples are saved; rerun the same command to resume.")
            raise typer.Exit(code=130) from None

    return wrapper


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f} items/s" if task.speed else "– items/s", style="cyan")


class RichProgress:
    """The runner's progress: a live bar (done/total, items/s, elapsed, ETA) on a terminal.

    Rich does not animate when output is not a terminal (CI logs, `make review > log`), which
    would leave a long run silent; there it prints a plain line every 5 % or 30 s instead.
    """

    PLAIN_EVERY_S = 30.0

    def __init__(self, console: Console) -> None:
        self._console = console
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
        self._live = console.is_terminal
        self._last_line = 0.0

    def start(self, total: int, done: int, description: str) -> None:
        if done:
            self._console.print(f"Resuming: {done} of {total} samples already journaled.")
        self._task = self._progress.add_task(description, total=total, completed=done)
        if self._live:
            self._progress.start()
        else:
            self._console.print(f"{description}: {done}/{total}")
            self._last_line = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)
        if not self._live:
            task = next(t for t in self._progress.tasks if t.id == self._task)
            step = max(1, int((task.total or 1) // 20))
            if task.completed % step == 0 or time.monotonic() - self._last_line > self.PLAIN_EVERY_S:
                self._plain_line(task)

    def _plain_line(self, task: Task) -> None:
        rate = f"{task.speed:.2f} items/s" if task.speed else "– items/s"
        eta = f", ETA {task.time_remaining:.0f}s" if task.time_remaining is not None else ""
        self._console.print(f"{task.description}: {task.completed:.0f}/{task.total:.0f} ({rate}{eta})")
        self._last_line = time.monotonic()

    def stop(self) -> None:
        if self._live:
            self._progress.stop()


def open_store(db: str | None) -> Any:
    from weighbridge.store.db import Store, default_url

    return Store(db or default_url())
