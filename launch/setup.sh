#!/usr/bin/env bash
# Create .venv (once) and install clf with its demo and test extras into it.
#
#   bash launch/setup.sh [--partition NAME] [--dry-run]
#
# TORCH_SPEC picks the torch version (default torch==2.13.0, the build this repo is tested with).
# --partition picks the torch build for the Great Lakes partition the jobs run on (slurm/README.md):
#   gpu (V100, compute capability 7.0)   the CUDA 12.6 build: torch >= 2.11's CUDA 12.8/13.0 builds
#                                        have no Volta kernels (pytorch#172352)
#   spgpu (A40), gpu_mig40 (A100)        the CUDA 12.8 build
#   standard, debug, largemem            the CPU build
# Without it, pip's default build (from PyPI; TORCH_INDEX=URL names another index). --dry-run
# prints the pip commands and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
partition="" dry_run=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --partition) partition=${2:?--partition needs a name}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "setup.sh: unknown argument $1 (usage: setup.sh [--partition NAME] [--dry-run])" >&2; exit 2 ;;
  esac
done
torch_index=${TORCH_INDEX:-}
case $partition in
  "") ;;
  gpu) torch_index=https://download.pytorch.org/whl/cu126 ;;
  spgpu | gpu_mig40) torch_index=https://download.pytorch.org/whl/cu128 ;;
  standard | debug | largemem) torch_index=https://download.pytorch.org/whl/cpu ;;
  *) echo "setup.sh: unknown partition '$partition' (gpu, spgpu, gpu_mig40, standard, debug, largemem)" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_args=("$torch_spec")
if [[ -n $torch_index ]]; then torch_args+=(--index-url "$torch_index"); fi
if [[ -n $dry_run ]]; then
  echo ".venv/bin/python -m pip install ${torch_args[*]}"
  echo ".venv/bin/python -m pip install -e .[demo,test]"
  exit 0
fi
stamp=.venv/.clf-installed
want="${torch_args[*]} $(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "${torch_args[@]}"
  .venv/bin/python -m pip install -q -e ".[demo,test]"
  echo "$want" > "$stamp"
fi
