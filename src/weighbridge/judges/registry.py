"""Every judge weighbridge ships, by name."""

from __future__ import annotations

from collections.abc import Callable

from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge
from weighbridge.judges.refusal import RefusalJudge

JUDGES: dict[str, Callable[[], Judge]] = {"refusal": RefusalJudge}
DEFAULT_JUDGES: tuple[str, ...] = ("refusal",)


def get_judge(name: str) -> Judge:
    try:
        return JUDGES[name]()
    except KeyError:
        raise WeighbridgeError(f"Unknown judge '{name}'", f"Choose one of: {', '.join(sorted(JUDGES))}") from None
