"""Inspect a model path statically: every file fingerprinted and format-checked, then metadata,
model card, compute, secrets and base-model diff, all landing as `Finding`s.

The walk skips nothing silently: a symlink leaving the directory, a FIFO or an unreadable file is
itself a finding (and is never opened: reading a FIFO would hang, following a link would scan, and
later hash, something the submitter did not hand over). Whatever the files contain, inspection
returns; only a path that does not exist is an error.
"""

from __future__ import annotations

import importlib
import math
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from weighbridge.domain import Finding
from weighbridge.errors import WeighbridgeError
from weighbridge.inspection import gguf_header, pickle_scan, safetensors_header
from weighbridge.inspection.formats import PICKLE_SUFFIXES, FileFormat, MalformedFile, detect_format
from weighbridge.inspection.metadata import ModelMetadata, describe_model
from weighbridge.intake.manifest import sha256_file

SEVERITY_RANK: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


@dataclass(frozen=True)
class InspectedFile:
    path: str  # relative to the inspected directory (or the file's name)
    sha256: str
    bytes: int
    format: str


@dataclass(frozen=True)
class Inspection:
    files: tuple[InspectedFile, ...]
    metadata: ModelMetadata | None
    findings: tuple[Finding, ...]  # most severe first

    def to_json(self) -> dict[str, Any]:
        """The `weighbridge inspect --json` contract (issue 5); fields may be added, never renamed."""
        meta = self.metadata
        return {
            "files": [asdict(f) for f in self.files],
            "parameters": meta.parameters if meta else None,
            "architecture": meta.architecture if meta else None,
            "findings": [
                {
                    "kind": f.kind,
                    "severity": f.severity,
                    "file": f.file,
                    "message": f.message,
                    "location": f.location,
                    "evidence": f.evidence,
                }
                for f in self.findings
            ],
            "metadata": _jsonable(asdict(meta)) if meta else {},
        }


def inspect_path(
    path: Path, *, card: Path | None = None, base: Path | None = None, declared_tokens: float | None = None
) -> Inspection:
    """Inspect a model file or directory without loading or unpickling anything.

    Args:
        path: a GGUF/safetensors/pickle file or a model directory (walked recursively).
        card: the model card (Markdown); checked for completeness and against the metadata, and
            read for declared training tokens.
        base: the declared base model; tensors are compared layer by layer.
        declared_tokens: training tokens the submitter declares; wins over the card's figure.

    Raises:
        WeighbridgeError: only when `path`, `card` or `base` does not exist.
    """
    _require(path, "model file or directory")
    if card is not None and not card.is_file():
        raise WeighbridgeError(f"No such model card: {card}", "Give the path of the model card (Markdown)")
    if base is not None:
        _require(base, "base model")
    root = path if path.is_dir() else path.parent
    files, findings = _walk(path) if path.is_dir() else ([path], [])
    inspected = []
    for file in files:
        record, file_findings = _inspect_file(file, _rel(file, root))
        if record is not None:
            inspected.append(record)
        findings.extend(file_findings)
    metadata, meta_findings = _metadata(path)
    findings.extend(meta_findings)
    findings.extend(_card_and_compute(card, metadata, declared_tokens))
    secrets = _sibling("secrets", findings)
    if secrets is not None:
        findings.extend(secrets.scan_secrets(root, files, metadata))
    diff = _sibling("diff", findings) if base is not None else None
    if diff is not None and base is not None:
        findings.extend(diff.diff_findings(path, base))
    findings.sort(key=lambda f: (SEVERITY_RANK.get(f.severity, 5), f.file or "", f.kind))
    return Inspection(tuple(inspected), metadata, tuple(findings))


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise WeighbridgeError(f"No such file or directory: {path}", f"Give the path of a {what}")


def _walk(root: Path) -> tuple[list[Path], list[Finding]]:
    """Regular files under `root`; links, special files and unreadable directories become findings."""
    files: list[Path] = []
    findings: list[Finding] = []
    real_root = root.resolve()

    def unreadable(exc: OSError) -> None:
        where = _rel(Path(exc.filename), root) if exc.filename else None
        findings.append(Finding("fs.unreadable", "medium", f"Could not read: {exc.strerror}", where))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = here / name
            try:
                mode = p.lstat().st_mode
            except OSError as exc:
                findings.append(Finding("fs.unreadable", "medium", f"Could not stat: {exc.strerror}", _rel(p, root)))
                continue
            if stat.S_ISLNK(mode):
                findings.append(_link_finding(p, root, real_root))
            elif stat.S_ISREG(mode):
                files.append(p)
            elif not stat.S_ISDIR(mode):
                findings.append(
                    Finding(
                        "fs.special_file",
                        "medium",
                        "Not a regular file (FIFO, socket or device); not read",
                        _rel(p, root),
                    )
                )
        dirnames.sort()
    return sorted(files), findings


def _link_finding(link: Path, root: Path, real_root: Path) -> Finding:
    rel = _rel(link, root)
    target = Path(os.readlink(link))
    resolved = link.resolve()
    if not resolved.exists():
        return Finding(
            "fs.symlink_dangling", "low", "Symbolic link to nothing; not followed", rel, evidence=str(target)
        )
    if not resolved.is_relative_to(real_root):
        return Finding(
            "fs.symlink_outside",
            "high",
            "Symbolic link pointing outside the model directory; not followed (it would read the reviewer's files)",
            rel,
            evidence=str(target),
        )
    return Finding(
        "fs.symlink",
        "info",
        "Symbolic link inside the directory; its target is scanned as itself",
        rel,
        evidence=str(target),
    )


def _inspect_file(path: Path, rel: str) -> tuple[InspectedFile | None, list[Finding]]:
    try:
        fmt = detect_format(path)
        record = InspectedFile(rel, sha256_file(path), path.stat().st_size, fmt)
        return record, _scan(path, rel, fmt)
    except OSError as exc:
        return None, [Finding("fs.unreadable", "medium", f"Could not read: {exc.strerror or exc}", rel)]


def _scan(path: Path, rel: str, fmt: FileFormat) -> list[Finding]:
    """Format-specific checks. Pickle-bearing formats get the opcode scan; headers get bounds checks."""
    if fmt == "gguf":
        return gguf_header.header_findings(path, rel)[1]
    if fmt == "safetensors":
        return safetensors_header.header_findings(path, rel)[1]
    if fmt in ("pytorch-zip", "zip"):
        return pickle_scan.scan_zip_file(path, rel)
    if fmt == "numpy":
        return pickle_scan.scan_npy_file(path, rel)
    if fmt == "pickle":
        return pickle_scan.scan_pickle_file(path, rel)
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return [Finding("gguf.bad_magic", "high", "Named .gguf but does not start with the GGUF magic", rel, "byte 0")]
    if suffix == ".safetensors":
        return safetensors_header.header_findings(path, rel)[1]  # explains precisely why it is not one
    if fmt == "unknown" and suffix in PICKLE_SUFFIXES:
        return pickle_scan.scan_pickle_file(path, rel)  # a damaged pickle still reports what it imports
    if fmt == "unknown":
        return [Finding("format.unknown", "info", "Unrecognised binary format; not scanned beyond its hash", rel)]
    return []


def _metadata(path: Path) -> tuple[ModelMetadata | None, list[Finding]]:
    try:
        return describe_model(path), []
    except MalformedFile:
        return None, []  # the file's own header finding already says why
    except WeighbridgeError as exc:
        return None, [Finding("metadata.unavailable", "info", f"No model metadata: {exc.problem}", path.name)]


def _card_and_compute(card: Path | None, metadata: ModelMetadata | None, declared: float | None) -> list[Finding]:
    findings: list[Finding] = []
    tokens, source = declared, "the submitter (--tokens)"
    if card is not None:
        text = card.read_text(encoding="utf-8", errors="replace")
        card_checks = _sibling("card", findings)
        if card_checks is not None:
            findings.extend(card_checks.check_card(text, metadata))
            if tokens is None:
                tokens, source = card_checks.declared_training_tokens(text), f"model card {card.name}"
    if tokens is None:
        source = "not declared"
    compute = _sibling("compute", findings)
    if compute is not None:
        findings.extend(compute.compute_findings(metadata.parameters if metadata else None, tokens, source))
    return findings


def _sibling(module: str, findings: list[Finding]) -> Any:
    """Import a sibling check module; if this build lacks it, say so as a finding instead of crashing.

    Only the module itself being absent is tolerated: an import error inside it is a bug and raises.
    """
    name = f"weighbridge.inspection.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        findings.append(
            Finding("inspection.unavailable", "low", f"The {module} checks are not available in this build")
        )
        return None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _jsonable(value: Any) -> Any:
    """Strict JSON: NaN/Infinity (possible in GGUF float fields) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
