#!/usr/bin/env bash
# The test suite: set up .venv, bring up the local Slurm cluster (3 nodes configured like Great
# Lakes: slurm/local/USAGE.md; root needed; CI=true makes Slurm tests fail rather than skip when
# it is missing), run pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
if [ "$(id -u)" = 0 ] && [ -x slurm/local/start.sh ]; then
  bash slurm/local/install.sh
  bash slurm/local/start.sh
fi
exec .venv/bin/python -m pytest "$@"
