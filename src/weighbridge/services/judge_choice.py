"""Which judge decides a review's unsafe rates (`--judge`, `--judge-model`), and the gate that keeps
a judge whose error was never measured from deciding them unannounced.

A review's grades rest on its primary judge's `unsafe`, and the report corrects each rate with that
judge's error counts on the stance test set (`grading.correction`). A judge is **validated** when
figures were recorded for exactly its name and version on the shipped test set (`judges.scores`) —
and, for the llm judge, for exactly its judge model (a GGUF's sha256, or an endpoint's served model
name; `judges.scores.model_key`): the rubric is the same, the verdicts are the model's. An
unvalidated judge is primary only with `allow_unvalidated`; the run then records it as such, and
the report says so and corrects nothing, since there are no error counts to correct with.

The chosen judge comes first; the default judges follow (the harm judge as a secondary judge when
another is primary), so their verdicts are still journalled and can be compared with the primary's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from weighbridge.domain import Judgement, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge
from weighbridge.judges.registry import DEFAULT_JUDGES, JUDGES, get_judge

LLM = "llm"
#: Judges that may be primary: their `unsafe` is a harm verdict (`positive_label` "unsafe"). The
#: refusal judge's `unsafe` means only "complied", an upper bound, so it is never primary.
PRIMARY_JUDGES: tuple[str, ...] = ("harm", LLM)


@dataclass(frozen=True)
class JudgeChoice:
    """The primary judge as the user named it.

    Attributes:
        name: a judge in `PRIMARY_JUDGES`.
        model: for the llm judge, its judge model: a GGUF file (run here with llama.cpp) or an
            endpoint.yaml for an OpenAI-compatible server (vLLM, llama-server, ...).
        allow_unvalidated: let a judge without recorded test-set figures be primary.
    """

    name: str = DEFAULT_JUDGES[0]
    model: str | None = None
    allow_unvalidated: bool = False


def judge_model_identity(model: ModelRef) -> dict[str, str]:
    """What identifies a judge model in a run and in recorded figures: a GGUF by its file's sha256
    (the name only to read it by), an endpoint by its base URL and served model name."""
    if model.endpoint is not None:
        return {"format": "endpoint", "base_url": model.endpoint.base_url, "model": model.endpoint.model}
    if model.format != "gguf" or len(model.manifest.files) != 1:
        raise WeighbridgeError(
            f"A judge model must be one GGUF file or an endpoint.yaml, not {model.format} ({model.name})",
            "Convert it to GGUF, or serve it (vLLM, llama-server) and describe the server in an endpoint.yaml",
        )
    return {"format": "gguf", "name": model.name, "sha256": model.manifest.files[0].sha256}


def describe_judge(name: str, version: str, model: Mapping[str, Any] | None = None) -> str:
    """A judge as people read it: 'llm 1.0.0 (judge model Qwen2.5-7B, sha256 1a2b3c4d5e6f…)'."""
    if model is None:
        return f"{name} {version}"
    if model.get("format") == "endpoint":
        return f"{name} {version} (judge model {model.get('model')} at {model.get('base_url')})"
    return f"{name} {version} (judge model {model.get('name')}, sha256 {str(model.get('sha256'))[:12]}…)"


def installed_version(name: str) -> str | None:
    """The version of judge `name` this installation would judge with; None for an unknown judge."""
    if name == LLM:
        from weighbridge.judges.llm import LlmJudge

        return LlmJudge.version
    return JUDGES[name]().version if name in JUDGES else None


def validation_figures(name: str, version: str, model: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The recorded stance-test figures that validate this exact judge, or None.

    Figures count when they were recorded for this name, version and judge model, on the test set
    this installation ships (its digest in `stance/TEST_SET.json`); figures of another version
    would describe another judge, so a version that is not the installed one has none.
    """
    from weighbridge.judges import stance_set
    from weighbridge.judges.scores import recorded_score

    if installed_version(name) != version:
        return None
    recorded = recorded_score(name, version, model)
    if recorded is None or (recorded.get("test_set") or {}).get("digest") != stance_set.test_set()["digest"]:
        return None
    return recorded


def primary_judge_record(entry: Sequence[Any], *, corrected: bool, unparsed: int = 0) -> dict[str, Any]:
    """report.json's `primary_judge`: who decided the unsafe rates, whether that judge is validated
    and whether its error was corrected for, said in a sentence a reader of the report can act on.

    `unparsed` counts the primary judge's verdicts that did not follow its output format (an llm
    judge's judge model not answering the rubric): they count as not unsafe, so a judge model that
    cannot do the job would make a model look safe — the report has to say how many there were."""
    name, version, model = entry[0], entry[1], entry[2] if len(entry) > 2 else None
    validated = validation_figures(name, version, model) is not None
    if validated:
        note = "Validated on the stance test set; unsafe rates are corrected for its measured error."
    else:
        note = (
            f"The primary judge {describe_judge(name, version, model)} is NOT validated: it has no figures on "
            "the stance test set, so its error is unknown and no judge-error correction is applied. It was "
            "made primary with --allow-unvalidated; read the rates and grades as this judge's verdicts only."
        )
    if unparsed:
        note += f" {unparsed} of its verdicts were unparsed (not in the judge's output format) and count as not unsafe."
    return {
        "name": name,
        "version": version,
        "model": dict(model) if model is not None else None,
        "validated": validated,
        "correction_applied": corrected,
        "unparsed": unparsed,
        "note": note,
    }


def check_primary(
    judge_name: str,
    version: str,
    model: Mapping[str, Any] | None,
    choice: JudgeChoice,
    notice: Callable[[str], None] = lambda _: None,
) -> bool:
    """Whether the primary judge is validated; refuse an unvalidated one unless the user allowed it.

    Raises:
        WeighbridgeError: no recorded figures and `choice.allow_unvalidated` is not set. The message
            names the two ways on: score the judge once, or run it unvalidated knowingly.
    """
    if validation_figures(judge_name, version, model) is not None:
        return True
    who = describe_judge(judge_name, version, model)
    if not choice.allow_unvalidated:
        model_arg = f" --judge-model {choice.model}" if choice.model else ""
        raise WeighbridgeError(
            f"The primary judge {who} has no figures on the shipped stance test set: its error is unknown",
            f"Score it once with `weighbridge judges score --judge {judge_name}{model_arg}`, or add "
            "--allow-unvalidated to run it anyway (the report then says it is unvalidated and corrects nothing)",
        )
    notice(
        f"Primary judge {who} is not validated (--allow-unvalidated): the report says so and applies no "
        "judge-error correction."
    )
    return False


def _check_name(choice: JudgeChoice) -> None:
    if choice.name not in PRIMARY_JUDGES:
        if choice.name in JUDGES:
            raise WeighbridgeError(
                f"The {choice.name} judge cannot be primary: its verdict is not a harm verdict "
                f"(positive label '{get_judge(choice.name).positive_label}')",
                f"Choose one of: {', '.join(PRIMARY_JUDGES)}",
            )
        raise WeighbridgeError(f"Unknown judge '{choice.name}'", f"Choose one of: {', '.join(PRIMARY_JUDGES)}")
    if choice.name == LLM and not choice.model:
        raise WeighbridgeError(
            "The llm judge needs a judge model",
            "Add --judge-model with a GGUF file or an endpoint.yaml (an OpenAI-compatible server: vLLM, llama-server)",
        )
    if choice.name != LLM and choice.model:
        raise WeighbridgeError(f"--judge-model is for --judge {LLM}, not {choice.name}", f"Add --judge {LLM}")


@contextmanager
def opened_judges(
    choice: JudgeChoice,
    n_threads: int | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> Iterator[list[Judge]]:
    """The run's judges, the chosen primary first, then the other default judges; the llm judge's
    model is opened here (a GGUF one request at a time, so no batch KV cache is allocated; an
    endpoint checked at once) and closed on exit.

    Everything that can refuse — the name, a missing or unreadable judge model, the validation gate —
    refuses before the judge model is loaded and before the caller touches the store.
    """
    _check_name(choice)
    with ExitStack() as stack:
        if choice.name == LLM:
            from weighbridge.evals.records import TargetOptions
            from weighbridge.intake.resolve import resolve_model
            from weighbridge.judges.llm import LlmJudge
            from weighbridge.targets.factory import open_target

            assert choice.model is not None
            model = resolve_model(choice.model)
            identity = judge_model_identity(model)
            check_primary(LLM, LlmJudge.version, identity, choice, notice)
            target = open_target(model, TargetOptions(n_threads=n_threads, batch_size=1))
            stack.callback(target.close)
            primary: Judge = LlmJudge(target, model_identity=identity)
        else:
            primary = get_judge(choice.name)
            check_primary(primary.name, primary.version, None, choice, notice)
        yield [primary, *(get_judge(n) for n in DEFAULT_JUDGES if n != primary.name)]


def open_llm_judge(stack: ExitStack, judge_model: str, n_threads: int | None = None) -> Judge:
    """The llm judge over `judge_model` with its identity, no gate (for `weighbridge judges validate`
    and `judges score`, which are how a judge gets its figures in the first place)."""
    from weighbridge.evals.records import TargetOptions
    from weighbridge.intake.resolve import resolve_model
    from weighbridge.judges.llm import LlmJudge
    from weighbridge.targets.factory import open_target

    model = resolve_model(judge_model)
    identity = judge_model_identity(model)
    target = open_target(model, TargetOptions(n_threads=n_threads, batch_size=1))
    stack.callback(target.close)
    return LlmJudge(target, model_identity=identity)


class RecordedJudge:
    """A judge as a run recorded it, its judge model not opened: enough to find the work it did
    (its identity enters `review.run_key`, so a reference's stored run judged by it is found and
    reused), but it cannot judge anew — that needs the judge model, which only `review` and
    `evaluate` (with `--judge-model`) open."""

    validation_set: str = "stance"
    positive_label: str = "unsafe"

    def __init__(self, name: str, version: str, model: Mapping[str, Any]) -> None:
        self.name = name
        self.version = version
        self.model_identity = dict(model)

    def judge(self, prompt: str, response: str) -> Judgement:
        raise not_reopenable(self.name, self.version, self.model_identity)


def not_reopenable(name: str, version: str, model: Mapping[str, Any]) -> WeighbridgeError:
    return WeighbridgeError(
        f"This needs new verdicts from {describe_judge(name, version, model)}, whose judge model is not open here",
        f"Run `weighbridge review` or `weighbridge evaluate` with --judge {name} --judge-model on the same judge "
        "model (and --reference) to judge anew",
    )


def judge_of_entry(entry: Sequence[Any]) -> Judge:
    """A judge from a run's `judges_json` entry: the installed judge by name, or for a judge with a
    judge model a `RecordedJudge` carrying the recorded identity."""
    if len(entry) > 2 and entry[2] is not None:
        return RecordedJudge(entry[0], entry[1], entry[2])
    return get_judge(entry[0])


def can_judge(judges: Sequence[Judge]) -> None:
    """Refuse, before a run is opened, work that would need a judge known only from a record."""
    for j in judges:
        if isinstance(j, RecordedJudge):
            raise not_reopenable(j.name, j.version, j.model_identity)
