"""The evaluation core: records, protocols and registries every suite, solver, scorer and target
plugs into (docs/architecture.md shows how to add each)."""
