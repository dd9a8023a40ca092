"""Loading a policy file with errors a policy author can act on: file, line and field.

PyYAML reports syntax errors with a position; pydantic reports schema errors with a field path but
no position. To give both the same shape, the YAML is also composed into its node tree and the
path of each validation error is walked down that tree to the line where the offending value is.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from weighbridge.errors import WeighbridgeError
from weighbridge.policy.model import Policy

__all__ = ["BUILTIN_POLICIES", "load_policy", "parse_policy"]

BUILTIN_POLICIES = ("default", "high-risk")


def load_policy(name: str | Path = "default") -> Policy:
    """A shipped profile by name (`default`, `high-risk`) or a policy file by path."""
    if isinstance(name, str) and name in BUILTIN_POLICIES:
        return _builtin(name)
    path = Path(name)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise WeighbridgeError(
            f"No such policy: {name}",
            f"Give a policy file's path or one of the shipped profiles: {', '.join(BUILTIN_POLICIES)}",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WeighbridgeError(f"Cannot read the policy {path}: {exc}", "Give a UTF-8 YAML file") from None
    return parse_policy(text, source=str(path))


@cache
def _builtin(name: str) -> Policy:
    text = resources.files("weighbridge.policy").joinpath("policies", f"{name}.yaml").read_text("utf-8")
    return parse_policy(text, source=f"{name}.yaml")


def parse_policy(text: str, source: str = "policy") -> Policy:
    """Validate policy YAML text.

    Raises:
        WeighbridgeError: "SOURCE line L: FIELD: what is wrong" for the first problem, with a count
            of the others.
    """
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WeighbridgeError(f"{source}{where}: invalid YAML: {problem}", "Fix the YAML syntax there") from None
    if not isinstance(data, dict):
        raise WeighbridgeError(
            f"{source}: a policy is a YAML mapping (id, version, title, baseline, rules), not a {type(data).__name__}",
            "See docs/policy.md for the format",
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f" line {line}" if line is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WeighbridgeError(
            f"{source}{where}: {field}: {first['msg']}{more}", "Fix that field; docs/policy.md lists every field"
        ) from None


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node on `loc` that exists (a missing key points at its parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if child is not None and isinstance(part, str):
                key = next(k for k, v in node.value if v is child)
                line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
