"""`weighbridge reference ...`: register, list and pre-compute the references grades compare against."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import (
    DEFAULT_MAX_TOKENS,
    DbOption,
    LimitOption,
    MaxTokensOption,
    RichProgress,
    SuiteOption,
    ThreadsOption,
    err,
    friendly_errors,
    open_store,
    out,
)
from weighbridge.domain import GenerationParams

reference_app = typer.Typer(
    help="Reference models: pinned by digest and chat format; their results are stored and reused by every review.",
    no_args_is_help=True,
)


@reference_app.command("add")
@friendly_errors
def add(
    name: Annotated[str, typer.Argument(help="Short name, e.g. acme-7b-v1.")],
    source: Annotated[str, typer.Argument(help="A .gguf file or a model.yaml for an OpenAI-compatible endpoint.")],
    title: Annotated[str | None, typer.Option("--title", help="Human title for reports.")] = None,
    chat_format: Annotated[
        str,
        typer.Option(
            "--chat-format",
            help="'model' (the GGUF's own template), 'plain-dialogue' (base models) or a .jinja template file.",
        ),
    ] = "model",
    db: DbOption = None,
) -> None:
    """Pin NAME to the model at SOURCE (its digest) asked through CHAT_FORMAT."""
    from weighbridge.references.registry import register

    store = open_store(db)
    try:
        ref = register(store, name, source, title=title, chat_format=chat_format)
    finally:
        store.close()
    out.print(f"Reference {ref.name}: {ref.title} · {ref.kind} · sha256 {ref.digest} · format {ref.chat_format}")


@reference_app.command("list")
@friendly_errors
def list_(db: DbOption = None) -> None:
    """Registered references, and built-in ones with whether they are installed."""
    from weighbridge.references.registry import BUILTINS, builtin_available, list_references

    store = open_store(db)
    try:
        registered = list_references(store)
    finally:
        store.close()
    table = Table("name", "title", "kind", "digest", "chat format", title="References")
    for ref in registered:
        table.add_row(ref.name, ref.title, ref.kind, ref.digest[:16], ref.chat_format)
    for name, builtin in BUILTINS.items():
        if all(r.name != name for r in registered):
            state = "built-in, installed" if builtin_available(name) else "built-in, not installed"
            table.add_row(name, builtin.title, state, "—", builtin.chat_format)
    out.print(table)


@reference_app.command("run")
@friendly_errors
def run(
    name: Annotated[str, typer.Argument(help="Reference name.")],
    suite: SuiteOption = "hazards",
    limit: LimitOption = None,
    threads: ThreadsOption = None,
    max_tokens: MaxTokensOption = DEFAULT_MAX_TOKENS,
    db: DbOption = None,
) -> None:
    """Evaluate a reference now (or confirm its stored results), so later reviews reuse them."""
    from weighbridge.services.review import EvalOptions, default_judges, evaluate_reference

    options = EvalOptions(suite=suite, limit=limit, params=GenerationParams(max_tokens=max_tokens), n_threads=threads)
    store = open_store(db)
    try:
        result = evaluate_reference(store, name, options, default_judges(), RichProgress(err))
    finally:
        store.close()
    how = "stored results reused" if result.info.reused else "evaluated now and stored"
    n = sum(n for _, n in result.counts.values())
    unsafe = sum(u for u, _ in result.counts.values())
    out.print(f"Reference {name}: run {result.run.id[:8]} · {n} samples · {unsafe} unsafe · {how}")


def register(app: typer.Typer) -> None:
    app.add_typer(reference_app, name="reference")
