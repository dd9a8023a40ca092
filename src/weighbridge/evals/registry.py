"""Registries of suites, solvers, scorers and targets: by decorator in-tree, by entry point outside.

A new suite is one module with a decorated factory; a third party adds one without forking by
declaring an entry point in its own package (`[project.entry-points."weighbridge.suites"]`,
`name = "pkg.module:factory"`). Built-in components are registered when their module is imported,
so `ensure_builtins` imports the in-tree plugin modules once before a name is looked up.

Why not a plain dict per kind: the same three things are needed for each (register without
clobbering, a lookup whose error lists what exists, entry points loaded lazily and once), and a
silent overwrite of one suite by another of the same name would change what a review asks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from weighbridge.errors import WeighbridgeError
from weighbridge.evals.protocols import Scorer, Solver, TargetKind
from weighbridge.evals.records import SuiteSpec

T = TypeVar("T")

#: In-tree modules that register components when imported.
BUILTIN_MODULES: tuple[str, ...] = (
    "weighbridge.suites.hazards",
    "weighbridge.evals.solvers",
    "weighbridge.judges.scorers",
    "weighbridge.judges.choice",
    "weighbridge.targets.factory",
)


class Registry(Generic[T]):
    """Named factories of one kind of component."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group  # the entry-point group third parties declare
        self._factories: dict[str, Callable[[], T]] = {}
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
        """Decorator: `@suites.register("hazards")` over a function that returns the component."""

        def add(factory: Callable[[], T]) -> Callable[[], T]:
            existing = self._factories.get(name)
            if existing is not None and existing is not factory:
                raise WeighbridgeError(
                    f"Two {self.kind}s are registered as {name!r} ({_where(existing)} and {_where(factory)})",
                    f"Rename one of them; {self.kind} names must be unique.",
                )
            self._factories[name] = factory
            return factory

        return add

    def unregister(self, name: str) -> None:
        """Drop a component (tests that register their own clean up with this)."""
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def names_in_order(self) -> list[str]:
        """Names in registration order (built-ins, then entry points): the target factory's
        precedence when several kinds accept one model."""
        self._load()
        return list(self._factories)

    def get(self, name: str) -> T:
        """Build the named component."""
        self._load()
        try:
            factory = self._factories[name]
        except KeyError:
            raise WeighbridgeError(
                f"Unknown {self.kind} {name!r}", f"Choose one of: {', '.join(self.names()) or '(none registered)'}"
            ) from None
        return factory()

    def _load(self) -> None:
        ensure_builtins()
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for point in entry_points(group=self.group):
            try:
                factory = point.load()
            except Exception as exc:  # a broken plugin names itself, never a traceback
                raise WeighbridgeError(
                    f"The {self.kind} plugin {point.name!r} ({point.value}) failed to load: {exc}",
                    f"Fix or uninstall the package that declares it in the {self.group!r} entry points.",
                ) from exc
            self.register(point.name)(factory)


def _where(factory: Callable[..., object]) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', '?')}"


@cache
def ensure_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


suites: Registry[SuiteSpec] = Registry("suite", "weighbridge.suites")
solvers: Registry[Solver] = Registry("solver", "weighbridge.solvers")
scorers: Registry[Scorer] = Registry("scorer", "weighbridge.scorers")
targets: Registry[TargetKind] = Registry("target", "weighbridge.targets")
