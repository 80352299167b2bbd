#!/usr/bin/env bash
# Create .venv (once) and install clf with its demo and test extras into it.
# TORCH_SPEC picks the torch build: the default is the CPU build this repo is tested with;
# on a GPU cluster use e.g. TORCH_SPEC="torch" (a CUDA build from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
stamp=.venv/.clf-installed
want="$torch_spec $(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$torch_spec" -e ".[demo,test]"
  echo "$want" > "$stamp"
fi
