"""One error type for everything a user can get wrong.

Following sigstore-python's lead: a single exception whose message says what failed and how to fix
it. The CLI prints it as one line and exits non-zero; anything else is a bug and may traceback.
"""

from __future__ import annotations


class WeighbridgeError(Exception):
    """A problem the user can fix. `fix` says how."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem}. {self.fix}." if self.fix else f"{self.problem}."
