"""`weighbridge reviews ...`: the 30-day review workflow, one command per action.

`weighbridge reviews` alone lists open reviews, most urgent first, overdue ones in red, then an
ESCALATION line for each review at or under a `[deadlines].warn_days` threshold (or overdue), runs the
settings file's `[deadlines].hook` once for each, and exits with the worst level. Every action
is taken as the user whose key the shell holds (see `weighbridge user --help`), allowed only to
their roles, and signed into the ledger. (`weighbridge review`, singular, is the one-shot local job.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from weighbridge.cliutil import DbOption, err, friendly_errors, open_store, out

if TYPE_CHECKING:
    from weighbridge.workflow.escalation import Escalation
    from weighbridge.workflow.service import ReviewView
    from weighbridge.workflow.states import Action

reviews = typer.Typer(
    name="reviews",
    help="The review workflow: open, advance, pause/resume, propose, approve (two approvers), decide, "
    "publish; or reject/withdraw. Without a command: list open reviews with days left and escalate "
    "those near their deadline (exit 0 none, 3 warning, 4 urgent, 5 overdue).",
    invoke_without_command=True,
)
HOOK_TIMEOUT_S = 60  # a hung notifier must not hang the listing (or the cron job that runs it)
ReviewArg = Annotated[str, typer.Argument(help="Review id (or a unique prefix).")]
NoteOption = Annotated[str, typer.Option("--note", help="A note recorded with the action.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why: recorded with the action.")]
PolicyOption = Annotated[
    str, typer.Option("--policy", help="Release policy (built-in name or YAML file) whose suites the evidence needs.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(reviews, name="reviews")


@reviews.callback()
@friendly_errors
def list_reviews(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Include closed reviews.")] = False,
    no_hook: Annotated[
        bool, typer.Option("--no-hook", help="Do not run the deadline hook (deadlines.hook in config.toml).")
    ] = False,
    db: DbOption = None,
) -> None:
    """List open reviews: id, model, state, days left on the 30-day clock (overdue in red).

    After the table, one ESCALATION line per open review at or under a threshold of days left
    (`[deadlines].warn_days` in $WEIGHBRIDGE_HOME/config.toml, default 7 and 2) or overdue, and the
    `[deadlines].hook` command run once per line (unless --no-hook). Exit code, the worst review's:
    0 none near its deadline, 3 at or under a threshold but not the last, 4 at or under the last
    threshold, 5 overdue (1 stays an error)."""
    if ctx.invoked_subcommand is not None:
        return
    from weighbridge.config import load_config
    from weighbridge.workflow.escalation import escalations, worst
    from weighbridge.workflow.service import list_reviews as load

    settings = load_config().deadlines  # first: a broken settings file must not pass for "nothing near"
    store = open_store(db)
    try:
        views = load(store, include_closed=show_all)
    finally:
        store.close()
    if not views:
        out.print("No open reviews." if not show_all else "No reviews.")
        return
    table = Table("review", "model", "state", "days left", "due (UTC)", "approvals")
    for v in views:
        table.add_row(
            v.id[:8], v.model, _state(v), _days(v), v.deadline.due_at.strftime("%Y-%m-%d"), str(len(v.status.approvers))
        )
    out.print(table)
    found = escalations(views, settings.warn_days)
    for esc in found:
        out.print(Text.assemble(("ESCALATION:", "bold red"), f" {esc.message}"))
    if settings.hook and not no_hook:
        for esc in found:
            _run_hook(settings.hook, esc)
    level = worst(found)
    if level:
        raise typer.Exit(code=int(level))


def _run_hook(command: str, esc: Escalation) -> None:
    """Run the reviewer's own notifier with the escalation in its environment. Its failure is a
    warning, not an error: the listing (and its exit code) must still reach whoever asked for it."""
    import os
    import subprocess

    env = os.environ | {
        "WEIGHBRIDGE_ALERT": f"ESCALATION: {esc.message}",
        "WEIGHBRIDGE_REVIEW": esc.review_id,
        "WEIGHBRIDGE_MODEL": esc.model,
        "WEIGHBRIDGE_DAYS_LEFT": f"{esc.days_left:.1f}",
        "WEIGHBRIDGE_DUE": esc.deadline.due_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "WEIGHBRIDGE_LEVEL": esc.level.label,
    }
    what = f"[yellow]warning:[/] the deadline hook for review {esc.review_id[:8]}"
    try:
        # shell=True: the command is the reviewer's own, from their own settings file, written for a shell.
        proc = subprocess.run(
            command, shell=True, env=env, capture_output=True, text=True, timeout=HOOK_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        err.print(f"{what} ran over {HOOK_TIMEOUT_S} s and was stopped")
        return
    except OSError as exc:
        err.print(f"{what} could not start: {exc}")
        return
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        err.print(f"{what} exited {proc.returncode}" + (f": {escape(tail[0])}" if tail else ""))


def _state(v: ReviewView) -> Text:
    return Text(
        f"{v.state.value} (paused)" if v.status.paused else v.state.value, style="yellow" if v.status.paused else ""
    )


def _days(v: ReviewView) -> Text:
    d = v.deadline
    if not v.status.open:
        return Text("closed", style="dim")
    if d.overdue:
        return Text(f"OVERDUE {-d.days_left:.1f}", style="bold red")
    return Text(f"{d.days_left:.1f}", style="yellow" if d.days_left < 5 else "green")


def _take(review: str, action: Action, detail: dict[str, str] | None, db: str | None) -> None:
    from weighbridge.services.identity import current_actor
    from weighbridge.workflow.service import act

    store = open_store(db)
    try:
        view = act(store, current_actor(store, err.print), review, action, detail)
    finally:
        store.close()
    _done(view)


def _done(view: ReviewView) -> None:
    last = view.events[-1]
    paused = " (clock paused)" if view.status.paused else ""
    out.print(
        f"Review {view.id[:8]}: {last.action.value} by {last.actor} → {view.state.value}{paused}; "
        f"{view.deadline.days_left:.1f} days left"
    )


@reviews.command("open")
@friendly_errors
def open_(
    submission: Annotated[str, typer.Argument(help="Submission id (or a unique prefix).")],
    previous: Annotated[
        str | None, typer.Option("--previous", help="Re-review: the finished review of an earlier version.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Open a review of a submission; its 30-day clock runs from the submission."""
    from weighbridge.services.identity import current_actor
    from weighbridge.workflow.service import open_review

    store = open_store(db)
    try:
        view = open_review(store, current_actor(store, err.print), submission, previous=previous)
    finally:
        store.close()
    out.print(
        f"Opened review {view.id} of {view.model} ({view.submission_id[:8]}); {view.deadline.days_left:.1f} days left"
    )


@reviews.command("show")
@friendly_errors
def show(review: ReviewArg, db: DbOption = None) -> None:
    """Show a review: state, clock, proposal, approvals and every action with its actor."""
    from weighbridge.workflow.service import find_review

    store = open_store(db)
    try:
        v = find_review(store, review)
    finally:
        store.close()
    out.print(f"review:     {v.id}")
    out.print(f"model:      {v.model} (submission {v.submission_id[:8]})")
    if v.previous_review_id:
        out.print(f"re-review of {v.previous_review_id[:8]}")
    out.print(Text.assemble("state:      ", _state(v)))
    out.print(Text.assemble("days left:  ", _days(v), f" (paused {v.deadline.paused_for.days} d in all)"))
    if v.status.proposal:
        p = v.status.proposal.detail
        out.print(f"proposal:   {p.get('release')} by {v.status.proposal.actor}: {p.get('rationale')}")
        out.print(f"approvals:  {', '.join(v.status.approvers) or 'none'}")
    table = Table("#", "when (UTC)", "actor", "action", "to", "detail")
    for e, at in zip(v.events, v.event_times, strict=True):
        detail = ", ".join(f"{k}={val}" for k, val in sorted(e.detail.items()) if val)
        table.add_row(str(e.seq), at.strftime("%Y-%m-%d %H:%M"), e.actor, e.action.value, e.to_state.value, detail)
    out.print(table)


@reviews.command("advance")
@friendly_errors
def advance(
    review: ReviewArg,
    note: NoteOption = "",
    policy: PolicyOption = "default",
    override: Annotated[
        str | None,
        typer.Option(
            "--override",
            help="Admins: go on without the missing evidence, for this reason (a visible, signed ledger entry).",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Take the next step: submitted → in_custody → inspecting → evaluating → findings (evaluators).

    Each step needs its evidence: a verified custody deposit (→ in_custody), signed inspection
    findings (→ evaluating), finished custody-copy runs of the policy's suites graded against a
    pinned reference (→ findings). A refusal names what is missing and the command that produces it.
    """
    from weighbridge.services.identity import current_actor
    from weighbridge.workflow.service import advance as step

    store = open_store(db)
    try:
        view = step(store, current_actor(store, err.print), review, note, policy=policy, override=override)
    finally:
        store.close()
    _done(view)
    if "override" in view.events[-1].detail:
        err.print(f"[bold yellow]OVERRIDDEN[/]: went on without: {view.events[-1].detail.get('missing', '')}")


@reviews.command("pause")
@friendly_errors
def pause(review: ReviewArg, reason: ReasonOption, db: DbOption = None) -> None:
    """Stop the clock while waiting on the submitter (evaluators)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.PAUSE, {"reason": reason}, db)


@reviews.command("resume")
@friendly_errors
def resume(review: ReviewArg, reason: ReasonOption = "", db: DbOption = None) -> None:
    """Restart the clock (evaluators, or the submitter answering)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.RESUME, {"reason": reason} if reason else None, db)


@reviews.command("propose")
@friendly_errors
def propose(
    review: ReviewArg,
    release: Annotated[str, typer.Option("--release", help="Release type, e.g. open_access, research_release.")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why this release type.")],
    db: DbOption = None,
) -> None:
    """Propose a release decision once the findings are in (evaluators, approvers)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.PROPOSE, {"release": release, "rationale": rationale}, db)


@reviews.command("approve")
@friendly_errors
def approve(review: ReviewArg, note: NoteOption = "", db: DbOption = None) -> None:
    """Approve the proposal (approvers; not your own proposal; two different approvers are needed)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.APPROVE, {"note": note} if note else None, db)


@reviews.command("revise")
@friendly_errors
def revise(review: ReviewArg, reason: ReasonOption, db: DbOption = None) -> None:
    """Send a proposal back to findings; its approvals lapse."""
    from weighbridge.workflow.states import Action

    _take(review, Action.REVISE, {"reason": reason}, db)


@reviews.command("decide")
@friendly_errors
def decide(review: ReviewArg, db: DbOption = None) -> None:
    """Record the decision: needs two verified approvals from approvers other than the proposer."""
    from weighbridge.workflow.states import Action

    _take(review, Action.DECIDE, None, db)


@reviews.command("reject")
@friendly_errors
def reject(review: ReviewArg, reason: ReasonOption, db: DbOption = None) -> None:
    """Reject the submission (approvers)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.REJECT, {"reason": reason}, db)


@reviews.command("withdraw")
@friendly_errors
def withdraw(review: ReviewArg, reason: ReasonOption = "", db: DbOption = None) -> None:
    """Withdraw the model from review (the submitter)."""
    from weighbridge.workflow.states import Action

    _take(review, Action.WITHDRAW, {"reason": reason} if reason else None, db)


@reviews.command("publish")
@friendly_errors
def publish(
    review: ReviewArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the signed notice.")],
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="report.json choosing the runs the notice carries; refused unless its model, runs, references "
            "and grades are this submission's (default: the newest runs that pass the evaluation gate).",
        ),
    ] = None,
    policy: PolicyOption = "default",
    db: DbOption = None,
) -> None:
    """Publish the signed notice of a decided review (approvers), naming the runs its grades come from."""
    from weighbridge.services.identity import current_actor
    from weighbridge.workflow.publish import publish_notice

    store = open_store(db)
    try:
        actor = current_actor(store, err.print)
        view, path = publish_notice(store, actor, review, out_dir, report=report, policy=policy)
    finally:
        store.close()
    _done(view)
    out.print(f"Notice: {path}")


@reviews.command("verify")
@friendly_errors
def verify(review: ReviewArg, db: DbOption = None) -> None:
    """Check every action of a review against its signed ledger entry. Exit 0 valid, 1 not."""
    from weighbridge.workflow.service import verify_review

    store = open_store(db)
    try:
        problems = verify_review(store, review)
    finally:
        store.close()
    if problems:
        for p in problems:
            out.print(f"[bold red]FAILED[/] {p}")
        raise typer.Exit(code=1)
    out.print(f"Review {review}: every action is signed by its actor's registered key and allowed to their role.")
