#!/usr/bin/env bash
# The test suite: set up .venv, bring up the local Slurm cluster (3 nodes configured like Great
# Lakes: slurm/local/USAGE.md; root needed; CI=true makes Slurm tests fail rather than skip when
# it is missing), run pytest. Extra args go to pytest. The tests that need the Slurm cluster
# (-m slurm) run in one pytest process, one after the other (they share the cluster and some stop
# its daemons); the others beside them in CLF_TEST_WORKERS pytest-xdist workers (default 2), each
# taking the next whole test file (--dist loadfile: a file's fixtures are made once), so that no
# core idles once the Slurm tests are done. CLF_TEST_PARALLEL=0 runs them all in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
if [ "$(id -u)" = 0 ] && [ -x slurm/local/start.sh ]; then
  bash slurm/local/install.sh
  bash slurm/local/start.sh
fi
marker_given=0
for arg in "$@"; do [[ "$arg" == -m* ]] && marker_given=1; done
if [ "${CLF_TEST_PARALLEL:-1}" = 0 ] || [ "$marker_given" = 1 ]; then  # a -m of the caller's: one process
  exec .venv/bin/python -m pytest "$@"
fi
others_log=$(mktemp -t clf-tests-not-slurm.XXXXXX)
workers=${CLF_TEST_WORKERS:-2}
[[ $workers =~ ^[1-9][0-9]*$ ]] || { echo "launch/test.sh: CLF_TEST_WORKERS must be a whole number >= 1, not '$workers'" >&2; exit 2; }
.venv/bin/python -m pytest -m "not slurm" -n "$workers" --dist loadfile "$@" >"$others_log" 2>&1 &
others=$!
status=0
.venv/bin/python -m pytest -m slurm "$@" || status=$?
others_status=0
wait "$others" || others_status=$?
echo "=================== the tests that do not need Slurm (-m 'not slurm') ==================="
cat "$others_log"
rm -f "$others_log"
ok() { [ "$1" = 0 ] || [ "$1" = 5 ]; }   # 5: pytest collected nothing (arguments that name one kind only)
if ok "$status" && ok "$others_status"; then
  echo "launch/test.sh: both parts passed (slurm: exit $status, the others: exit $others_status)"
  exit 0
fi
echo "launch/test.sh: FAILED (slurm: exit $status, the others: exit $others_status)"
exit 1
