#!/usr/bin/env bash
# Build llama-cpp-python (it compiles llama.cpp) as one of weighbridge's named variants.
#
#   scripts/build-llama.sh VARIANT [DIR]
#
# VARIANT
#   portable  GGML_NATIVE=OFF: llama.cpp's fixed x86-64 level (SSE4.2, AVX, AVX2, FMA, F16C, BMI2),
#             whatever CPU builds it. Every CPU with AVX2 runs the same kernels and gives the same
#             answers, AVX-512 or not. The default (docs/reproducibility.md has the measured cost).
#   native    GGML_NATIVE=ON: -march=native, the kernels of the CPU it is built on (AVX-512, VNNI,
#             BF16 where present). Greedy answers at near ties then depend on the build machine.
#   baseline  GGML_NATIVE=OFF without AVX/AVX2/FMA/F16C/BMI2: SSE4.2 kernels only, for x86-64 CPUs
#             without AVX2; on any machine, a second instruction-set level to measure against.
# DIR         install into this folder (pip --target) instead of .venv, to keep a second build
#             beside the first: `PYTHONPATH=DIR weighbridge ...` then runs with it
#             (benchmarks/builds.py does this).
#
# The variant and its CMake flags are written next to the library (llama_cpp/weighbridge_build.json),
# where weighbridge reads them into every run's identity.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT=${1:?usage: scripts/build-llama.sh portable|native|baseline [DIR]}
DEST=${2:-}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
PY=.venv/bin/python
[ -x "$PY" ] || { echo "no .venv: run 'make setup' first" >&2; exit 1; }

case "$VARIANT" in
  portable) FLAGS="-DGGML_NATIVE=OFF" ;;
  native) FLAGS="-DGGML_NATIVE=ON" ;;
  baseline) FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF" ;;
  *) echo "unknown llama.cpp build variant '$VARIANT': use portable, native or baseline" >&2; exit 2 ;;
esac

echo "==> building llama-cpp-python $VERSION, $VARIANT variant (CMAKE_ARGS=$FLAGS; about 6 minutes on 2 cores)"
export CMAKE_ARGS="$FLAGS"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# --no-cache-dir: pip would otherwise reuse a wheel it built earlier with other flags.
ARGS=(install -v --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$VERSION")
if [ -n "$DEST" ]; then
  rm -rf "$DEST"
  mkdir -p "$DEST"
  ARGS+=(--target "$DEST")
fi
# -v shows the compiler steps; keep only "[n/N] file" so progress is readable.
"$PY" -m pip --disable-pip-version-check "${ARGS[@]}" 2>&1 \
  | awk '/^ *\[[0-9]+\/[0-9]+\]/ { n=split($0, w, "/"); printf "    llama.cpp %s %s\n", $1, w[n]; fflush(); next }
         /^(Successfully|ERROR|error)/ { print; fflush() }'

# --no-deps above keeps --force-reinstall from rebuilding the world; into .venv, add what
# llama-cpp-python needs (numpy, jinja2, ...) now: the requirement is met, so nothing is rebuilt.
[ -n "$DEST" ] || "$PY" -m pip --disable-pip-version-check install --quiet "llama-cpp-python==$VERSION"

PKG=$(PYTHONPATH="${DEST}" "$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("llama_cpp").origin))') || {
  echo "llama-cpp-python failed to build: rerun with 'pip install -v llama-cpp-python' to see why (needs gcc, g++, cmake)" >&2
  exit 1
}
[ -z "$DEST" ] || case "$PKG" in "$(cd "$DEST" && pwd)"/*) ;; *) echo "the build in $DEST is not the one Python finds ($PKG)" >&2; exit 1 ;; esac
"$PY" - "$PKG/weighbridge_build.json" "$VARIANT" "$FLAGS" "$VERSION" <<'PYEOF'
import json, platform, sys
from datetime import datetime, timezone
path, variant, flags, version = sys.argv[1:]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) if platform.system() == "Linux" else platform.processor()
json.dump({"variant": variant, "cmake_args": flags, "package_version": version, "machine": platform.machine(),
           "built_on_cpu": model, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
PYEOF
PYTHONPATH="${DEST}" "$PY" -c 'import llama_cpp; print("==> llama.cpp", llama_cpp.__version__, llama_cpp.llama_print_system_info().decode().strip())'
