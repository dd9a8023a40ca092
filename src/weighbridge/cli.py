"""`weighbridge` command line: parse, call a service, render. No domain logic lives here."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from weighbridge import __version__
from weighbridge.cli_suite import ProfileOption, SuiteFileOption, SuitesOption
from weighbridge.cli_targets import (
    DeviceOption,
    DtypeOption,
    EngineOption,
    GpuLayersOption,
    NCtxOption,
    target_options,
)
from weighbridge.cliutil import (
    DEFAULT_MAX_TOKENS,
    DbOption,
    LimitOption,
    MaxTokensOption,
    ReferenceOption,
    RichProgress,
    SuiteOption,
    ThreadsOption,
    err,
    friendly_errors,
    open_store,
    out,
)
from weighbridge.domain import Finding, GenerationParams
from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from weighbridge.report import ReportFiles
    from weighbridge.services.review import ReviewOutcome

app = typer.Typer(
    name="weighbridge",
    help="Pre-release safety review of open-weight AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"weighbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """weighbridge: custody, inspection, evaluation, grading and signed notices for model releases."""


LabOption = Annotated[
    str | None,
    typer.Option("--lab", help="The submitting organisation; its signer in config.toml (signers table) applies."),
]
IdentityOption = Annotated[
    str | None, typer.Option("--identity", help="The signer e-mail or URI a Sigstore keyless model.sig must name.")
]
IssuerOption = Annotated[
    str | None, typer.Option("--issuer", help="The OIDC issuer URL that signer's certificate must name.")
]
JudgeOption = Annotated[
    str,
    typer.Option(
        "--judge", help="The primary judge, whose verdicts decide the unsafe rates: harm, or llm (with --judge-model)."
    ),
]
JudgeModelOption = Annotated[
    str | None,
    typer.Option(
        "--judge-model",
        help="For --judge llm: a GGUF file (run here with llama.cpp) or an endpoint.yaml for an OpenAI-compatible "
        "server (vLLM, llama-server).",
    ),
]
AllowUnvalidatedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unvalidated",
        help="Let a judge with no figures on the stance test set be primary: the report says so and applies no "
        "judge-error correction.",
    ),
]


@app.command()
@friendly_errors
def review(
    model: Annotated[
        str | None,
        typer.Argument(
            help="A .gguf file, a Hugging Face model directory, or a model.yaml for an OpenAI-compatible "
            "endpoint. Default: SmolLM2-135M."
        ),
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write report.json and report.html.")] = None,
    limit: LimitOption = None,
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite", help="Suite to run (default: hazards); with --suite-file, the name the file is added under."
        ),
    ] = None,
    suites: SuitesOption = None,
    suite_file: SuiteFileOption = None,
    profile: ProfileOption = None,
    threads: ThreadsOption = None,
    max_tokens: MaxTokensOption = DEFAULT_MAX_TOKENS,
    reference: ReferenceOption = None,
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="Grade on the absolute view only (no reference model).")
    ] = False,
    adaptive: Annotated[
        bool,
        typer.Option("--adaptive", help="Stop asking a category once its grade is settled (95 %, planned looks)."),
    ] = False,
    check_sample: Annotated[
        int,
        typer.Option(
            "--check-sample",
            min=0,
            help="Items asked again one at a time after a batched run: the report states how many answers and "
            "verdicts the batch size changed (0: skip).",
        ),
    ] = 32,
    lab: LabOption = None,
    identity: IdentityOption = None,
    issuer: IssuerOption = None,
    judge: JudgeOption = "harm",
    judge_model: JudgeModelOption = None,
    allow_unvalidated: AllowUnvalidatedOption = False,
    engine: EngineOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "auto",
    gpu_layers: GpuLayersOption = 0,
    n_ctx: NCtxOption = None,
    db: DbOption = None,
) -> None:
    """Review a model end to end: submit, evaluate it (its custody copy) and its references, grade, report.

    Rerun to resume an interrupted review; a reference's stored results are reused. A model signed
    with a Sigstore keyless model.sig is taken in only with its expected signer (--identity/--issuer
    or --lab), as with `submit`. Several suites (--suites, --profile) run one after another, one
    report per suite in OUT/SUITE/.
    """
    from dataclasses import replace

    from weighbridge.cli_suite import check_suites_exist, review_selection
    from weighbridge.services.intake import signer_requirement
    from weighbridge.services.judge_choice import JudgeChoice
    from weighbridge.services.reproduce import batch_check
    from weighbridge.services.review import EvalOptions
    from weighbridge.services.review import review as run_review

    if no_reference and reference:
        raise WeighbridgeError("--no-reference and --reference contradict each other", "Give one of them")
    selection = review_selection(suite, suites, suite_file, profile, limit)
    check_suites_exist(selection, db)  # several suites: all checked before the first review starts
    options = EvalOptions(
        suite=selection.suites[0],
        limit=selection.limit,
        params=GenerationParams(max_tokens=max_tokens),
        n_threads=threads,
        adaptive=adaptive,
        judge=JudgeChoice(judge, judge_model, allow_unvalidated),
        target=target_options(threads, engine, device, dtype, gpu_layers, n_ctx),
    )
    names = [] if no_reference else reference
    several = len(selection.suites) > 1
    base = (out_dir or _default_out(model)) if several else out_dir
    for suite_name in selection.suites:
        if several:
            out.print(f"Suite {suite_name}:")
        outcome = run_review(
            lambda: open_store(db),
            model,
            base / suite_name if several and base is not None else base,
            replace(options, suite=suite_name),
            RichProgress(err),
            notice=err.print,
            reference_names=names,
            check=batch_check(check_sample, RichProgress(err)),
            signer=signer_requirement(lab, identity, issuer),
            private_suite=selection.private,
        )
        _print_review(outcome)


def _default_out(model: str | None) -> Path:
    """Where the reports of several suites go without --out: the folder a single review would use."""
    from weighbridge.intake.resolve import resolve_model

    resolved = resolve_model(model)
    return Path("reports") / f"{resolved.name}-{resolved.digest[:8]}"


def _print_review(outcome: ReviewOutcome) -> None:
    for ref in outcome.references:
        how = "stored results reused" if ref.info.reused else "evaluated now"
        out.print(
            f"Reference {ref.info.name}: run {ref.run.id[:8]}, {sum(n for _, n in ref.counts.values())} samples ({how})"
        )
    stats = outcome.evaluation.stats
    out.print(
        f"Run {outcome.evaluation.run.id[:8]}: {stats.samples} samples "
        f"({stats.generated} generated, {stats.cache_hits} from cache, {stats.resumed} resumed) in {stats.seconds:.1f}s"
    )
    print_files(outcome.files)


def print_files(files: ReportFiles) -> None:
    out.print(f"Report: {files.html}")
    out.print(f"PDF:    {files.pdf}")
    out.print(f"JSON:   {files.json}")
    from weighbridge.cli_adjudicate import adjudication_line

    line = adjudication_line(files.json)
    if line:
        out.print(line)


SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def print_findings(findings: Sequence[Finding]) -> None:
    table = Table("severity", "kind", "file", "message", title="Findings")
    for f in findings:
        table.add_row(Text(f.severity, style=SEVERITY_STYLE[f.severity]), f.kind, f.file or "", f.message)
    out.print(table)


@app.command()
@friendly_errors
def submit(
    path: Annotated[str, typer.Argument(help="A .gguf or .safetensors file, a model directory, or a model.yaml.")],
    card: Annotated[Path | None, typer.Option("--card", help="The model card (Markdown).")] = None,
    base: Annotated[Path | None, typer.Option("--base", help="The declared base model, to diff against.")] = None,
    tokens: Annotated[
        float | None, typer.Option("--tokens", help="Declared training tokens, e.g. 2e12 (for the compute estimate).")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The lab's public key (PEM) for a key-signed model.sig.")
    ] = None,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="Folder of safety documentation / audit logs to hand in.")
    ] = None,
    lab: LabOption = None,
    identity: IdentityOption = None,
    issuer: IssuerOption = None,
    db: DbOption = None,
) -> None:
    """Take a model in: fingerprint, verify its signature, inspect, record findings, encrypt into custody."""
    from weighbridge.intake.resolve import resolve_model
    from weighbridge.services.intake import open_vault, require_signer, signer_requirement, take_in

    model = resolve_model(path)
    signer = signer_requirement(lab, identity, issuer)
    if model.path:
        require_signer(Path(model.path), signer)  # a refused signer leaves no store or custody key behind
    store = open_store(db)
    try:
        vault = open_vault(store, notice=err.print) if model.path else None
        intake = take_in(
            store,
            model,
            vault=vault,
            card=card,
            base=base,
            tokens=tokens,
            public_key=public_key,
            docs=docs,
            signer=signer,
        )
        documents = store.documents(intake.submission.id)
    finally:
        store.close()
    print_findings(intake.findings)
    for path, digest, size in documents:
        out.print(f"Document {path} · {size} bytes · sha256 {digest}")
    custody = "encrypted in custody" if intake.in_custody else "no files to hold (endpoint)"
    out.print(f"Submission {intake.submission.id} · {model.name} · {model.format} · sha256 {model.digest} · {custody}")


@app.command()
@friendly_errors
def evaluate(
    submission: Annotated[str, typer.Argument(help="Submission id (or a unique prefix).")],
    suite: SuiteOption = "hazards",
    limit: LimitOption = None,
    threads: ThreadsOption = None,
    max_tokens: MaxTokensOption = DEFAULT_MAX_TOKENS,
    judge: JudgeOption = "harm",
    judge_model: JudgeModelOption = None,
    allow_unvalidated: AllowUnvalidatedOption = False,
    engine: EngineOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "auto",
    gpu_layers: GpuLayersOption = 0,
    n_ctx: NCtxOption = None,
    db: DbOption = None,
) -> None:
    """Run a suite against a submitted model (decrypted from custody for the run only). Rerun to resume."""
    from weighbridge.cli_suite import Selection, check_suites_exist
    from weighbridge.evals import registry
    from weighbridge.services.evidence import weights_source
    from weighbridge.services.intake import open_vault
    from weighbridge.services.judge_choice import JudgeChoice, opened_judges
    from weighbridge.services.review import EvalOptions, evaluation_copy, load_suite, open_target
    from weighbridge.services.review import evaluate as do_evaluate

    if suite in registry.suites.names():
        load_suite(suite)  # a built-in suite's data is checked before the store is opened
    else:
        check_suites_exist(Selection((suite,), limit), db)  # a private one, without making a store
    choice = JudgeChoice(judge, judge_model, allow_unvalidated)
    options = EvalOptions(suite=suite, limit=limit, params=GenerationParams(max_tokens=max_tokens), judge=choice)
    # The judge is chosen (and an unvalidated one refused) before the store is opened.
    with opened_judges(choice, threads, err.print) as judges:
        store = open_store(db)
        try:
            row = store.find_submission(submission)
            load_suite(suite, store)  # a private suite is found in the store
            with evaluation_copy(store, row, lambda: open_vault(store, err.print), f"evaluate {suite}") as model:
                opening = target_options(threads, engine, device, dtype, gpu_layers, n_ctx)
                target = open_target(model, threads, options=opening)
                try:
                    weights = weights_source(store, row)
                    result = do_evaluate(
                        store, row, model, target, options, RichProgress(err), judges=judges, weights=weights
                    )
                finally:
                    target.close()
        finally:
            store.close()
    s = result.stats
    out.print(
        f"Run {result.run.id} {result.run.status}: {s.samples} samples ({s.generated} generated, "
        f"{s.cache_hits} from cache, {s.resumed} resumed)"
    )


@app.command()
@friendly_errors
def report(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write report.json, .html and .pdf.")] = Path(
        "reports"
    ),
    reference: ReferenceOption = None,
    threads: ThreadsOption = None,
    db: DbOption = None,
) -> None:
    """Write report.json, report.html and report.pdf for a finished run, graded against references."""
    from weighbridge.report import write_reports
    from weighbridge.services.review import evaluate_reference, options_of_run, recorded_model, report_for_run

    store = open_store(db)
    try:
        row = store.get_run(run)
        if row.status != "finished":
            raise WeighbridgeError(
                f"Run {row.id[:8]} is not finished ({store.count_samples(row.id)}/{row.total_items} samples)",
                "Resume it with `weighbridge evaluate SUBMISSION` using the same options",
            )
        submission = store.get_submission(row.submission_id)
        assert submission is not None
        options, judges = options_of_run(row, threads)
        refs = [evaluate_reference(store, name, options, judges, RichProgress(err)) for name in reference or []]
        data = report_for_run(store, row, recorded_model(submission), references=refs)
    finally:
        store.close()
    print_files(write_reports(data, out_dir))


@app.command("submissions")
@friendly_errors
def list_submissions(db: DbOption = None) -> None:
    """List submissions."""
    store = open_store(db)
    try:
        rows = store.list_submissions()
    finally:
        store.close()
    table = Table("id", "name", "format", "sha256", "submitted")
    for r in rows:
        table.add_row(r.id[:8], r.name, r.format, r.digest[:16], r.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@app.command("runs")
@friendly_errors
def list_runs(db: DbOption = None) -> None:
    """List evaluation runs with their progress."""
    store = open_store(db)
    try:
        rows = store.list_runs()
        counts = {r.id: store.count_samples(r.id) for r in rows}
    finally:
        store.close()
    table = Table("run", "submission", "suite", "limit", "samples", "status", "started")
    for r in rows:
        table.add_row(
            r.id[:8],
            r.submission_id[:8],
            f"{r.suite_id} {r.suite_version}",
            str(r.item_limit or "all"),
            f"{counts[r.id]}/{r.total_items}",
            r.status,
            r.started_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


# Each area keeps its commands in its own module, `cli_<area>.py`, exposing `register(app)`.
AREAS: tuple[str, ...] = (
    "references",
    "judges",
    "custody",
    "inspect",
    "ledger",
    "users",
    "reviews",
    "policy",
    "notice",
    "readiness",
    "reproduce",
    "adjudicate",
    "suite",
    "targets",
    "serve",
)
for _area in AREAS:
    importlib.import_module(f"weighbridge.cli_{_area}").register(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
