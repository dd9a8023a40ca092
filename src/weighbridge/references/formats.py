"""Explicit chat formats: how a conversation becomes the text a model continues.

An instruct model carries its own chat template; a base model has none, so reviewing one through
a chat interface needs a format chosen by the reviewer. A format is data (a Jinja template shipped
under `templates/`) plus the stop strings that end the model's turn, and its digest is part of the
target's identity, so results obtained with different formats are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from weighbridge.domain import sha256_text


@dataclass(frozen=True)
class ChatFormat:
    """A chat template and the strings at which generation stops.

    Args:
        name: a short label for reports.
        template: Jinja source, rendered like a Hugging Face chat template (`messages`,
            `bos_token`, `eos_token`, `add_generation_prompt`, `raise_exception`).
        stop: strings that mark the start of a turn the model must not write itself; generation
            ends before them (a base model happily goes on to invent the user's next question).
    """

    name: str
    template: str
    stop: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_text(self.template)


def load_format(name: str, stop: tuple[str, ...] = ()) -> ChatFormat:
    """A format shipped in `weighbridge/references/templates/NAME.jinja`."""
    template = files("weighbridge.references").joinpath("templates", f"{name}.jinja").read_text(encoding="utf-8")
    return ChatFormat(name=name, template=template, stop=stop)


# "User: ...\n\nAssistant:" turns for base models. Both turn markers stop generation: a base model
# that has answered tends to write the next "User:" line, or to start another "Assistant:" turn.
PLAIN_DIALOGUE = load_format("plain-dialogue", stop=("\nUser:", "\nAssistant:"))
