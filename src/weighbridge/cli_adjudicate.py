"""`weighbridge adjudicate RUN`: a person labels the judgements a judge should not decide alone.

One key per decision, so a queue of dozens takes minutes: the request, the answer and every judge's
verdict are shown, and `u` / `s` / `r` record the reviewer's label (unsafe, safe, refused) as a
ledger entry signed by their own key; `n` skips, `q` stops. Shift (`U` / `S` / `R`) asks for a note
first. What is queued, what is signed and how labels change the grades: docs/adjudication.md.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError
from weighbridge.grading.adjudication import LOW_CONFIDENCE, HumanLabel, Queued

if TYPE_CHECKING:
    from weighbridge.services.adjudication import Adjudication
    from weighbridge.services.identity import Actor
    from weighbridge.store.db import Store
    from weighbridge.store.schema import RunRow, SampleRow

KEYS: dict[str, HumanLabel] = {"u": HumanLabel.UNSAFE, "s": HumanLabel.SAFE, "r": HumanLabel.REFUSED}
SKIP, QUIT = "n", "q"
HELP = "[u] unsafe  [s] safe  [r] refused  [n] skip  [q] quit   (U / S / R: the same with a note)"
# Long enough to read a request whole and judge an answer's stance; a runaway generation is cut
# (the ledger entry binds the whole answer by its digest either way).
REQUEST_CHARS = 1200
ANSWER_CHARS = 3000
REASONS = {
    "needs_review": "the judge could not read it",
    "judges_disagree": "the judges disagree",
    "low_confidence": "low confidence",
}


def register(app: typer.Typer) -> None:
    app.command("adjudicate")(adjudicate)


@friendly_errors
def adjudicate(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Act as this user, signing with their key file $WEIGHBRIDGE_HOME/keys/USER.pem "
            "(default: WEIGHBRIDGE_USER_KEY / WEIGHBRIDGE_USER, else the local admin).",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            dir_okay=False,
            help="Write the run's adjudicated judgements as labelled JSONL (the format of "
            "`weighbridge judges validate --data`) instead of labelling.",
        ),
    ] = None,
    list_only: Annotated[bool, typer.Option("--list", help="Show the queue without labelling anything.")] = False,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include judgements already adjudicated (a new label supersedes).")
    ] = False,
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, max=1.0, help="Queue primary verdicts under this confidence."),
    ] = LOW_CONFIDENCE,
    db: DbOption = None,
) -> None:
    """Label the judgements a person should check — needs_review, low confidence, judges disagreeing —
    one key each. Every label is a signed ledger entry and replaces the judge's verdict in the grades."""
    from weighbridge.services.adjudication import export_rows, run_queue, write_export

    store = open_store(db)
    try:
        row = store.get_run(run)
        if export is not None:
            rows = export_rows(store, row)
            if not rows:
                raise WeighbridgeError(
                    f"Run {row.id[:8]} has no adjudicated judgements to export",
                    f"Label some: weighbridge adjudicate {row.id[:8]}",
                )
            write_export(export, rows)
            out.print(f"Wrote {len(rows)} labelled rows of run {row.id[:8]} to {export}")
            return
        queue, samples, ledgered = run_queue(store, row, threshold=threshold, include_adjudicated=include_all)
        if list_only:
            _print_queue(queue, samples, ledgered.current, row)
            return
        if not queue:
            done = len(ledgered.current)
            more = f"; {done} already adjudicated (--all to revisit them)" if done else ""
            out.print(f"Nothing queued for a person in run {row.id[:8]}{more}.")
            return
        actor = _actor(store, as_user)
        _label_queue(store, actor, row, queue, samples, ledgered.current)
    finally:
        store.close()


def _actor(store: Store, as_user: str | None) -> Actor:
    """Who signs: `--as USER`, else the user this shell acts as; refused before anything is shown
    when their roles do not allow adjudicating."""
    from weighbridge.services.adjudication import require_adjudicator
    from weighbridge.services.identity import actor_named, current_actor

    actor = actor_named(store, as_user) if as_user else current_actor(store, err.print)
    require_adjudicator(actor)
    return actor


def _label_queue(
    store: Store,
    actor: Actor,
    run: RunRow,
    queue: list[Queued],
    samples: dict[str, SampleRow],
    done: dict[str, Adjudication],
) -> None:
    from weighbridge.services.adjudication import adjudicate as record

    labelled = skipped = 0
    for position, queued in enumerate(queue, start=1):
        sample = samples[queued.candidate.item_id]
        out.print(_panel(position, len(queue), queued, sample, done.get(sample.item_id)))
        key = _choice()
        if key == QUIT:
            break
        if key == SKIP:
            skipped += 1
            out.print("skipped")
            continue
        note = _note() if key.isupper() else ""
        entry = record(store, actor, run, sample, KEYS[key.lower()], note)
        labelled += 1
        out.print(f"[bold]{entry.label.value}[/] · signed by {actor.name} · ledger entry {entry.seq}")
    left = len(queue) - labelled - skipped
    out.print(
        f"Labelled {labelled}, skipped {skipped}, left {left} of {len(queue)} queued. "
        f"`weighbridge report {run.id[:8]}` grades with the labels; "
        f"`weighbridge adjudicate {run.id[:8]} --export FILE.jsonl` writes them as labelled data."
    )


def _choice() -> str:
    """One of u s r U S R n q: other keys show the help and ask again; Ctrl-C, Ctrl-D or the end of
    piped input quit (what was signed stays signed)."""
    while True:
        try:
            key = _read_key()
        except (KeyboardInterrupt, EOFError):
            return QUIT
        if key == "":
            return QUIT
        if key.isspace():
            continue
        if key.lower() in KEYS or key in (SKIP, QUIT):
            return key
        out.print(HELP, markup=False)


def _read_key() -> str:
    # click.getchar reads the terminal (raw, one key); piped input and tests are read a character
    # at a time from stdin instead (click.getchar would open /dev/tty behind a pipe).
    if sys.stdin.isatty():
        return click.getchar()
    return sys.stdin.read(1)


def _note() -> str:
    return str(click.prompt("Note", default="", show_default=False)).strip()


def _printable(text: str, limit: int) -> Text:
    """Model output as inert text: control characters (escape sequences included) shown as U+FFFD,
    never interpreted by the terminal or by Rich markup; cut at `limit` characters."""
    clean = "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc" else "\ufffd" for c in text)
    if len(clean) > limit:
        return Text(clean[:limit]).append(f" […{len(clean) - limit} more characters]", style="dim")
    return Text(clean)


def _panel(position: int, total: int, queued: Queued, sample: SampleRow, done: Adjudication | None) -> Panel:
    why = ", ".join(REASONS.get(r.value, r.value) for r in queued.reasons)
    body = Text()
    body.append("Request\n", style="bold cyan").append_text(_printable(sample.prompt, REQUEST_CHARS))
    body.append("\n\nAnswer\n", style="bold cyan").append_text(_printable(sample.response, ANSWER_CHARS))
    body.append("\n\nJudges\n", style="bold cyan")
    for j in sample.judgements:
        style = "red" if j.unsafe else "green"
        body.append(f"  {j.judge} {j.judge_version}: ").append(j.label, style=f"bold {style}")
        body.append(f" (confidence {j.confidence:.2f})")
        if j.rationale:
            body.append(f" · {j.rationale}", style="dim")
        body.append("\n")
    if done is not None:
        body.append(
            f"\nAlready labelled {done.label.value} by {done.reviewer} (ledger entry {done.seq})\n", style="yellow"
        )
    body.append(f"\n{HELP}", style="dim")
    title = Text(f"{position} of {total} · {sample.category} · {sample.item_id}")
    return Panel(body, title=title, subtitle=Text(f"queued: {why}"), title_align="left")


def _print_queue(
    queue: list[Queued], samples: dict[str, SampleRow], done: dict[str, Adjudication], run: RunRow
) -> None:
    if not queue:
        out.print(f"Nothing queued for a person in run {run.id[:8]} ({len(done)} adjudicated).")
        return
    table = Table("#", "item", "category", "queued because", "judges", "person", title=f"Queue of run {run.id[:8]}")
    for i, q in enumerate(queue, start=1):
        s = samples[q.candidate.item_id]
        judges = ", ".join(f"{j.judge} {j.label} ({j.confidence:.2f})" for j in s.judgements)
        label = done.get(s.item_id)
        table.add_row(
            str(i),
            s.item_id,
            s.category,
            ", ".join(REASONS.get(r.value, r.value) for r in q.reasons),
            judges,
            f"{label.label.value} ({label.reviewer})" if label else "",
        )
    out.print(table)
    out.print(f"{len(queue)} queued; {len(done)} judgements of this run adjudicated in all.")


def adjudication_line(report_json: Path) -> str | None:
    """'Adjudicated: k of n judgements (...)' for the report just written; None for a report
    without the block (or unreadable: the report's own lines already name the file)."""
    import json

    try:
        report = json.loads(report_json.read_text(encoding="utf-8"))
        block, run_id = report["adjudication"], str(report["run"]["id"])
        k, n = int(block["adjudicated"]), int(block["queued"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    hint = f"; label them with `weighbridge adjudicate {run_id[:8]}`" if n > k else ""
    return f"Adjudicated: {k} of {n} judgements queued for a person{hint}"
