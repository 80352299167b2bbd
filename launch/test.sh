#!/usr/bin/env bash
# The test suite: set up .venv, bring up the local Slurm cluster (3 nodes configured like Great
# Lakes: slurm/local/USAGE.md; root needed; CI=true makes Slurm tests fail rather than skip when
# it is missing), run pytest. Extra args go to pytest. The tests run in CLF_TEST_WORKERS processes
# (pytest-xdist, default 2): the Slurm tests one after the other in one of them (they share the
# cluster), the others beside them; CLF_TEST_WORKERS=0 runs everything in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
if [ "$(id -u)" = 0 ] && [ -x slurm/local/start.sh ]; then
  bash slurm/local/install.sh
  bash slurm/local/start.sh
fi
workers=${CLF_TEST_WORKERS:-2}
if [[ ! "$workers" =~ ^[0-9]+$ ]]; then
  echo "launch/test.sh: CLF_TEST_WORKERS=$workers is not a number of processes" >&2
  exit 2
fi
if [ "$workers" -gt 0 ]; then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
fi
exec .venv/bin/python -m pytest "$@"
