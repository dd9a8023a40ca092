"""`weighbridge policy ...`: explain a release recommendation, show a policy, diff two policies."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.policy import PolicyFacts, Recommendation

policy_app = typer.Typer(
    name="policy",
    help="Release policy as code: which release type a review's evidence supports, and why.",
    no_args_is_help=True,
)

PolicyOption = Annotated[
    str,
    typer.Option("--policy", help="A policy file, or a shipped profile: default, high-risk."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("check")
@friendly_errors
def check(
    report: Annotated[Path, typer.Argument(help="A review's report.json.")],
    policy: PolicyOption = "default",
    card: Annotated[Path | None, typer.Option("--card", help="The model card (declared task, size).")] = None,
    model_type: Annotated[
        str | None,
        typer.Option("--model-type", help="Override: specialized_narrow, advanced_general or frontier."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recommend a release type for a report and explain it: model type, every rule that fired."""
    from weighbridge.policy import MODEL_TYPES, evaluate, facts_from_report, load_policy

    if model_type is not None and model_type not in MODEL_TYPES:
        raise WeighbridgeError(f"Unknown model type {model_type!r}", f"Choose one of: {', '.join(MODEL_TYPES)}")
    facts = facts_from_report(_read_report(report), card_text=_read_text(card) if card else None)
    rec = evaluate(load_policy(policy), facts, model_type=model_type)
    if as_json:
        out.print(json.dumps(recommendation_json(rec), indent=2, ensure_ascii=False), markup=False)
        return
    render_recommendation(rec, facts.model_name)


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    return {
        "release": rec.release,
        "policy": {"id": rec.policy_id, "version": rec.policy_version},
        "model_type": asdict(rec.model_type),
        "fired_rules": [asdict(r) for r in rec.fired_rules],
        "deciding_rules": [r.rule_id for r in rec.deciding],
    }


def render_recommendation(rec: Recommendation, model_name: str) -> None:
    mt = rec.model_type
    out.print(
        f"[bold]{model_name}[/]: recommended release [bold]{_words(rec.release).upper()}[/] "
        f"(policy {rec.policy_id} {rec.policy_version})"
    )
    how = "set explicitly" if mt.overridden else "inferred"
    out.print(f"Model type: [bold]{_words(mt.model_type)}[/] ({how}: {'; '.join(mt.reasons)})")
    table = Table("rule", "asks for", "because", title="Rules that fired", title_justify="left")
    for r in rec.fired_rules:
        deciding = r.release == rec.release
        style = "bold" if deciding else ""
        asks = _words(r.release) if r.release else "[dim]advisory[/]"
        table.add_row(f"[{style}]{r.rule_id}[/]" if style else r.rule_id, asks, f"{r.description}. {r.because}")
    out.print(table)
    fixes = [r for r in rec.fired_rules if r.fix and r.release is not None and r.release != "open_access"]
    if fixes:
        out.print("What would lift the restrictions:")
        for r in fixes:
            out.print(f"  • {r.rule_id}: {r.fix}")


@policy_app.command("show")
@friendly_errors
def show(policy: PolicyOption = "default", as_json: JsonOption = False) -> None:
    """Print a policy: baseline per model type and every rule in words."""
    from weighbridge.policy import load_policy

    p = load_policy(policy)
    if as_json:
        out.print(json.dumps(p.model_dump(mode="json", exclude_none=True), indent=2), markup=False)
        return
    out.print(f"[bold]{p.title}[/] — {p.id} {p.version}" + (f" (uses: {', '.join(p.uses)})" if p.uses else ""))
    if p.description:
        out.print(p.description.strip())
    mt = p.model_types
    out.print(
        f"Frontier: ≥ {mt.frontier_min_training_flops:.0e} training FLOPs or ≥ {mt.frontier_min_parameters:.0e} "
        f"parameters. Specialized narrow: card task in {', '.join(mt.narrow_tasks) or '(none)'}."
    )
    base = Table("model type", "baseline release")
    for kind, release in p.baseline.items():
        base.add_row(_words(kind), _words(release))
    out.print(base)
    rules = Table("rule", "applies to", "when", "asks for")
    for rule in p.rules:
        when = ", ".join(f"{k}={v}" for k, v in rule.when.model_dump(exclude_none=True, exclude_defaults=True).items())
        applies = ", ".join(_words(t) for t in rule.model_types) if rule.model_types else "all"
        rules.add_row(
            f"{rule.id}\n[dim]{rule.description}[/]",
            applies,
            when,
            _words(rule.release) if rule.release else "advisory",
        )
    out.print(rules)


@policy_app.command("diff")
@friendly_errors
def diff(
    old: Annotated[str, typer.Argument(help="The current policy (file or shipped profile).")],
    new: Annotated[str, typer.Argument(help="The proposed policy (file or shipped profile).")],
    reports: Annotated[
        Path | None,
        typer.Option("--reports", help="A folder of report.json files (searched recursively); default: the store."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changing OLD to NEW would change: rules, and the recommendation of every past review."""
    from weighbridge.policy import diff_policies, diff_rules, load_policy

    old_p, new_p = load_policy(old), load_policy(new)
    cases = _report_cases(reports) if reports is not None else _store_cases(db)
    changes = diff_policies(old_p, new_p, cases)
    rule_changes = diff_rules(old_p, new_p)
    if as_json:
        payload = {
            "old": {"id": old_p.id, "version": old_p.version},
            "new": {"id": new_p.id, "version": new_p.version},
            "rules": [asdict(rc) for rc in rule_changes],
            "reviews": [
                {
                    "name": c.name,
                    "old": c.old.release,
                    "new": c.new.release,
                    "changed": c.release_changed,
                    "rules_added": list(c.rules_added),
                    "rules_removed": list(c.rules_removed),
                }
                for c in changes
            ],
        }
        out.print(json.dumps(payload, indent=2), markup=False)
        return
    out.print(f"{old_p.id} {old_p.version} → {new_p.id} {new_p.version}")
    if old_p.baseline != new_p.baseline:
        for kind in old_p.baseline:
            if old_p.baseline[kind] != new_p.baseline[kind]:
                out.print(f"  baseline {_words(kind)}: {_words(old_p.baseline[kind])} → {_words(new_p.baseline[kind])}")
    for rc in rule_changes:
        out.print(f"  rule {rc.rule_id}: {rc.change}")
    if not cases:
        out.print("No past reviews found to compare.")
        return
    table = Table("review", "before", "after", "rules now firing", "rules no longer firing")
    for c in changes:
        after = f"[bold yellow]{_words(c.new.release)}[/]" if c.release_changed else _words(c.new.release)
        table.add_row(c.name, _words(c.old.release), after, ", ".join(c.rules_added), ", ".join(c.rules_removed))
    out.print(table)
    moved = sum(c.release_changed for c in changes)
    out.print(f"{moved} of {len(changes)} review(s) would get a different release type.")


def _report_cases(folder: Path) -> list[tuple[str, PolicyFacts]]:
    from weighbridge.policy import facts_from_report

    if not folder.is_dir():
        raise WeighbridgeError(f"No such folder: {folder}", "Give a folder that holds report.json files")
    cases = []
    for path in sorted(folder.rglob("report.json")):
        report = _read_report(path)
        name = f"{report.get('model', {}).get('name', '?')} ({path.parent.name})"
        cases.append((name, facts_from_report(report)))
    return cases


def _store_cases(db: str | None) -> list[tuple[str, PolicyFacts]]:
    """The latest finished run of every submission in the store, rebuilt from the journal."""
    from weighbridge.policy import facts_from_report
    from weighbridge.services.review import recorded_model, report_for_run

    store = open_store(db)
    try:
        cases = []
        for sub in store.list_submissions():
            run = store.latest_finished_run(sub.id, "hazards")
            if run is None:
                continue
            report = report_for_run(store, run, recorded_model(sub))
            card = sub.card_text if isinstance(getattr(sub, "card_text", None), str) else None
            cases.append((f"{sub.name} ({sub.id[:8]})", facts_from_report(report, card_text=card)))
        return cases
    finally:
        store.close()


def _read_report(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WeighbridgeError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})", "Give a report.json") from None
    if not isinstance(data, dict) or "suites" not in data:
        raise WeighbridgeError(f"{path} is not a weighbridge report (no 'suites')", "Give a review's report.json")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise WeighbridgeError(f"No such file: {path}", "Check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WeighbridgeError(f"Cannot read {path}: {exc}", "Give a UTF-8 text file") from None


def _words(value: str) -> str:
    return value.replace("_", " ")
