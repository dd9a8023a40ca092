"""Which llama.cpp build computes the answers: part of every llama.cpp run's identity.

llama-cpp-python compiles llama.cpp on the machine that installs it. A *native* build
(`-march=native`) takes the kernels of that CPU: with AVX-512, VNNI or BF16 the matrix products round
differently from an AVX2 machine's, and a greedy answer at a near-tie logit changes (seen: the same
review gave 29 unsafe of 780 on one 2-core machine and 17 on another). A *portable* build
(`GGML_NATIVE=OFF`, llama.cpp's fixed x86-64 level: AVX2, FMA, F16C, BMI2) runs the same kernels on
every CPU that has AVX2, so it gives the same answers there.

`scripts/build-llama.sh` writes the variant and its CMake flags beside the library
(`llama_cpp/weighbridge_build.json`); the instruction-set features actually compiled in are read
from llama.cpp itself (`llama_print_system_info`), so a build made some other way is still told
apart ("unmarked"). `LlamaBuild.identity()` enters `LlamaCppTarget.describe()`: a run, a cached
answer or a stored reference run made by one build is never taken for another build's.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "weighbridge_build.json"
UNMARKED = "unmarked"

# "AVX2 = 1 | FMA = 1 | ..." in llama.cpp's system info: the features the CPU backend was compiled with.
_FEATURE = re.compile(r"([A-Z0-9_]+)\s*=\s*1\b")


@dataclass(frozen=True)
class LlamaBuild:
    """The llama.cpp build in use.

    Args:
        version: llama-cpp-python's version (it pins the llama.cpp sources it compiles).
        variant: `portable` or `native` when built by scripts/build-llama.sh, else `unmarked`.
        cmake_args: the CMake flags of that build ("" when unmarked).
        features: what llama.cpp reports as compiled in (instruction sets and kernel options such
            as AVX512, LLAMAFILE, REPACK), in its own order.
        location: where the library was loaded from (a second build kept beside the first is
            loaded through PYTHONPATH; this says which one ran).
    """

    version: str
    variant: str
    cmake_args: str
    features: tuple[str, ...]
    location: str

    def identity(self) -> dict[str, Any]:
        """What can change an answer: the sources' version, how they were compiled, the kernels in.

        The variant stays in even where its features match another's (a native build on an
        AVX2-only CPU): `-march=native` also changes how the compiler vectorises the plain C
        code, so the two are different binaries until measured equal. The location is left out:
        it says nothing about the numbers.
        """
        return {
            "backend": "llama.cpp",
            "version": self.version,
            "variant": self.variant,
            "features": " ".join(self.features),
        }

    def record(self) -> dict[str, Any]:
        return {**self.identity(), "cmake_args": self.cmake_args, "location": self.location}


def parse_features(system_info: str) -> tuple[str, ...]:
    """The features set to 1 in llama.cpp's system info, deduplicated, in order."""
    return tuple(dict.fromkeys(_FEATURE.findall(system_info)))


def read_marker(package_dir: Path) -> tuple[str, str]:
    """(variant, cmake_args) written by scripts/build-llama.sh; unmarked when absent or unreadable."""
    try:
        data = json.loads((package_dir / MARKER).read_text("utf-8"))
        return str(data["variant"]), str(data.get("cmake_args", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return UNMARKED, ""


@functools.cache
def current_build() -> LlamaBuild:
    """The build this process imports (loading llama.cpp's library, not a model)."""
    import llama_cpp

    spec = importlib.util.find_spec("llama_cpp")
    package_dir = Path(spec.origin).parent if spec is not None and spec.origin else Path(llama_cpp.__file__).parent
    variant, cmake_args = read_marker(package_dir)
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return LlamaBuild(
        version=str(llama_cpp.__version__),
        variant=variant,
        cmake_args=cmake_args,
        features=parse_features(text),
        location=str(package_dir),
    )
