"""The release policy file, as a validated model.

Every field is declared with `extra="forbid"`, so a misspelt key is an error that names it rather
than a rule that silently never fires. Conditions are typed predicates (not expression strings):
a policy author cannot write something the engine would have to guess at, and `policy show`
can render every rule in words.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from weighbridge.domain import Severity

__all__ = [
    "GRADE_ORDER",
    "MODEL_TYPES",
    "RELEASE_ORDER",
    "Condition",
    "Evidence",
    "FindingMatch",
    "GradeName",
    "ModelType",
    "ModelTypeRules",
    "Policy",
    "ReleaseType",
    "Rule",
]

ReleaseType = Literal["open_access", "research_release", "restricted_api", "closed_development"]
ModelType = Literal["specialized_narrow", "advanced_general", "frontier"]
GradeName = Literal["Poor", "Fair", "Good", "Very Good", "Excellent"]
Evidence = Literal["hazards", "grades", "over_refusal", "tamper_resistance", "parameters", "training_compute"]

# From the most open to the most closed: the recommendation is the most closed release any rule asks for.
RELEASE_ORDER: tuple[ReleaseType, ...] = ("open_access", "research_release", "restricted_api", "closed_development")
MODEL_TYPES: tuple[ModelType, ...] = ("specialized_narrow", "advanced_general", "frontier")
GRADE_ORDER: tuple[GradeName, ...] = ("Poor", "Fair", "Good", "Very Good", "Excellent")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FindingMatch(_Strict):
    """Inspection findings whose kind matches `kind` (shell-style pattern, e.g. `pickle.*`)."""

    kind: str = Field(min_length=1)
    min_severity: Severity = "info"


class Condition(_Strict):
    """When a rule fires. All predicates given must hold.

    Category predicates (`grade_at_most`, `ungraded`, `unsettled`, `unsafe_rate_above`,
    `samples_below`) are judged per category of `suite` (or only `categories`): the condition holds
    when at least one category satisfies all of them. The others are model-wide.
    """

    suite: str = "hazards"
    categories: list[str] | None = None
    grade_at_most: GradeName | None = None
    ungraded: Literal[True] | None = None
    unsettled: Literal[True] | None = None
    unsafe_rate_above: float | None = Field(default=None, ge=0, le=1)
    rate_bound: Literal["point", "upper", "lower"] = Field(
        default="upper", description="which end of the 95 % interval `unsafe_rate_above` reads"
    )
    samples_below: int | None = Field(default=None, ge=1)
    over_refusal_above: float | None = Field(default=None, ge=0, le=1)
    tamper_unsafe_rate_above: float | None = Field(default=None, ge=0, le=1)
    tamper_cost_gpu_hours_below: float | None = Field(default=None, gt=0)
    training_flops_above: float | None = Field(default=None, gt=0)
    parameters_above: float | None = Field(default=None, gt=0)
    finding: FindingMatch | None = None
    missing: list[Evidence] | None = None

    CATEGORY_FIELDS: ClassVar[tuple[str, ...]] = (
        "grade_at_most",
        "ungraded",
        "unsettled",
        "unsafe_rate_above",
        "samples_below",
    )
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = (
        "over_refusal_above",
        "tamper_unsafe_rate_above",
        "tamper_cost_gpu_hours_below",
        "training_flops_above",
        "parameters_above",
        "finding",
        "missing",
    )

    @model_validator(mode="after")
    def _has_a_predicate(self) -> Condition:
        if all(getattr(self, f) is None for f in self.CATEGORY_FIELDS + self.MODEL_FIELDS):
            raise ValueError(
                "a condition needs at least one predicate (e.g. grade_at_most, unsafe_rate_above, finding, missing)"
            )
        return self

    @property
    def has_category_predicate(self) -> bool:
        return any(getattr(self, f) is not None for f in self.CATEGORY_FIELDS)


class Rule(_Strict):
    """One clause of the policy: when `when` holds (for the listed model types), release at most as
    openly as `release`. A rule without `release` is advisory: it is shown in the rationale only."""

    id: str
    description: str = Field(min_length=1)
    when: Condition
    model_types: list[ModelType] | None = None
    release: ReleaseType | None = None
    fix: str = ""

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", value):
            raise ValueError("rule ids are lower-case letters, digits, '-', '_' or '.', e.g. 'hazard-poor'")
        return value


class ModelTypeRules(_Strict):
    """How the model type is inferred from measurements (an explicit override always wins).

    Frontier: estimated training compute or parameter count at or above the thresholds. Specialized
    narrow: the card declares a narrow task (`pipeline_tag` in `narrow_tasks`). Otherwise advanced
    narrow & general: the conservative middle for a generative model.
    """

    frontier_min_training_flops: float = Field(default=1e25, gt=0)
    frontier_min_parameters: float = Field(default=1e11, gt=0)
    narrow_tasks: list[str] = Field(default_factory=list)


class Policy(_Strict):
    id: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?$")
    title: str = Field(min_length=1)
    description: str = ""
    uses: list[str] = Field(default_factory=list, description="the uses this profile is meant for")
    model_types: ModelTypeRules = Field(default_factory=ModelTypeRules)
    baseline: dict[ModelType, ReleaseType]
    rules: list[Rule]

    @field_validator("baseline")
    @classmethod
    def _every_type(cls, value: dict[ModelType, ReleaseType]) -> dict[ModelType, ReleaseType]:
        missing = [t for t in MODEL_TYPES if t not in value]
        if missing:
            raise ValueError(f"baseline needs a release type for every model type; missing: {', '.join(missing)}")
        return value

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in value:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return value
