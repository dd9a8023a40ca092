"""Every judge weighbridge ships, by name."""

from __future__ import annotations

from collections.abc import Callable

from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge
from weighbridge.judges.harm import HarmJudge
from weighbridge.judges.refusal import RefusalJudge

#: Judges that need nothing but their own files. The LLM judge needs a judge model, so it is built
#: with `weighbridge.judges.llm.LlmJudge(target)` instead (``weighbridge judges validate --judge llm``).
JUDGES: dict[str, Callable[[], Judge]] = {"harm": HarmJudge, "refusal": RefusalJudge}
#: The first is the primary judge: its `unsafe` decides a review's graded unsafe rate.
DEFAULT_JUDGES: tuple[str, ...] = ("harm", "refusal")


def get_judge(name: str) -> Judge:
    try:
        return JUDGES[name]()
    except KeyError:
        raise WeighbridgeError(f"Unknown judge '{name}'", f"Choose one of: {', '.join(sorted(JUDGES))}") from None
