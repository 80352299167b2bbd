#!/usr/bin/env bash
# shellcheck disable=SC2016  # job scripts are single-quoted on purpose
# End-to-end check of the local Slurm cluster (run start.sh first): plain
# job + accounting, array, multi-task srun, dependencies, signals, requeue
# and time limit. Takes about 75 s, dominated by the 1-minute TIMEOUT job.
# Prints "smoke: N passed, M failed" and exits non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

WORK=$(mktemp -d /tmp/clf-slurm-smoke.XXXXXX)
cd "$WORK"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

submit() { sbatch --parsable --account="$CLUSTER" --chdir="$WORK" "$@" | cut -d";" -f1; }

# Accounting state of a job (array: one line per task), e.g. "COMPLETED".
acct_state() { sacct -j "$1" -X -n -P -o State 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# wait_state JOBID EXPECTED TIMEOUT: poll sacct until the job reaches a
# final state; succeed when it is EXPECTED (a regex).
wait_state() {
    local id=$1 want=$2 deadline=$((SECONDS + $3)) state=
    while ((SECONDS < deadline)); do
        state=$(acct_state "$id")
        if [[ -n $state && ! $state =~ PENDING|RUNNING|REQUEUED|COMPLETING|SUSPENDED ]]; then
            [[ $state =~ ^($want)$ ]] && return 0
            echo "  job $id ended as '$state', expected '$want'" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "  job $id still '$state' after $3 s (expected '$want')" >&2
    return 1
}

# wait_file_has FILE REGEX TIMEOUT
wait_file_has() {
    local deadline=$((SECONDS + $3))
    until grep -qE "$2" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "  '$2' not in $1 after $3 s:" >&2; cat "$1" >&2 2>/dev/null || true; return 1; }
        sleep 0.5
    done
}

# Start the slow one first and check it last.
timeout_job=$(submit --time=1 -o timeout.out --wrap 'echo start; sleep 200')

# 1. Plain job, visible in accounting as COMPLETED.
t0=$SECONDS
id=$(submit -o plain.out --wrap 'sleep 2; echo hi')
if wait_state "$id" COMPLETED 60 && grep -qx hi plain.out; then
    pass "plain job $id COMPLETED in $((SECONDS - t0))s"
else fail "plain job $id"; fi

# 2. Array job: every task runs and completes.
id=$(submit --array=0-3 -o 'array_%a.out' --wrap 'echo task=$SLURM_ARRAY_TASK_ID')
if wait_state "$id" COMPLETED 60 && [[ $(cat array_*.out | sort | tr '\n' ' ') == "task=0 task=1 task=2 task=3 " ]]; then
    pass "array job $id (4 tasks)"
else fail "array job $id"; fi

# 3. Multi-task step inside a batch job.
id=$(submit --ntasks=2 -o srun.out --wrap 'srun --ntasks=2 bash -c "echo rank=\$SLURM_PROCID"')
if wait_state "$id" COMPLETED 60 && [[ $(sort srun.out | tr '\n' ' ') == "rank=0 rank=1 " ]]; then
    pass "srun --ntasks=2 in job $id"
else fail "srun --ntasks=2 in job $id"; cat srun.out; fi

# 4. Dependencies: afterok waits for the first job; afterok on a failed job
#    is cancelled (kill_invalid_depend); afterany runs anyway.
a=$(submit -o depA.out --wrap 'sleep 3; date +%s.%N')
b=$(submit -o depB.out --dependency=afterok:"$a" --wrap 'date +%s.%N')
f=$(submit -o /dev/null --wrap 'exit 3')
g=$(submit -o /dev/null --dependency=afterok:"$f" --wrap 'true')
h=$(submit -o /dev/null --dependency=afterany:"$f" --wrap 'true')
if wait_state "$b" COMPLETED 60 && wait_state "$f" FAILED 30 &&
    wait_state "$g" CANCELLED 30 && wait_state "$h" COMPLETED 30 &&
    awk -v a="$(cat depA.out)" -v b="$(cat depB.out)" 'BEGIN { exit !(b >= a) }'; then
    pass "dependencies afterok ($a -> $b), failed afterok cancelled ($g), afterany ($h)"
else fail "dependencies $a $b $f $g $h"; fi

# A batch script whose srun step traps USR2 (like submitit's generated
# script), and whose batch shell also traps it.
cat >trap_step.sh <<'EOF'
#!/bin/bash
trap 'echo batch-got-USR2' USR2
srun --ntasks=1 bash -c 'trap "echo step-got-USR2" USR2; echo step-started; for i in $(seq 300); do sleep 1; done' &
wait; wait
EOF

# 5. --signal=USR2@N: Slurm sends it N s (up to +30 s) before the time limit.
id=$(submit --time=1 --signal=USR2@30 -o sig_auto.out trap_step.sh)
if wait_file_has sig_auto.out step-got-USR2 60; then
    pass "--signal=USR2@30 delivered to the step of job $id"
else fail "--signal=USR2@30 job $id"; fi
scancel "$id" || true

# 6. scancel --signal=USR2 JOBID (what submitit's _interrupt does) reaches
#    the steps; --batch reaches the batch shell.
id=$(submit -o sig_manual.out trap_step.sh)
if wait_file_has sig_manual.out step-started 30 && scancel --signal=USR2 "$id" &&
    wait_file_has sig_manual.out step-got-USR2 20 && scancel --batch --signal=USR2 "$id" &&
    wait_file_has sig_manual.out batch-got-USR2 20; then
    pass "scancel --signal=USR2 (step) and --batch (batch shell) for job $id"
else fail "scancel --signal job $id"; fi
scancel "$id" || true

# 7. Requeue: from inside the job (as submitit's checkpointing does) and
#    with scontrol from outside; the job then runs again and completes.
id=$(submit -o requeue.out --open-mode=append --wrap \
    'echo run=$SLURM_RESTART_COUNT; if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then scontrol requeue $SLURM_JOB_ID; sleep 60; fi')
if wait_state "$id" COMPLETED 90 && grep -q 'run=1' requeue.out; then
    pass "self-requeue of job $id"
else fail "self-requeue of job $id"; cat requeue.out; fi
id=$(submit -o requeue2.out --open-mode=append --wrap 'echo run=${SLURM_RESTART_COUNT:-0}; [ "${SLURM_RESTART_COUNT:-0}" != 0 ] || sleep 300')
if wait_file_has requeue2.out run=0 30 && scontrol requeue "$id" && wait_state "$id" COMPLETED 90; then
    pass "scontrol requeue of job $id"
else fail "scontrol requeue of job $id"; cat requeue2.out; fi

# 8. Time limit.
if wait_state "$timeout_job" TIMEOUT 150; then
    pass "--time=1 job $timeout_job ended as TIMEOUT"
else fail "--time=1 job $timeout_job"; fi

echo "smoke: $passed passed, $failed failed (work dir $WORK)"
((failed == 0))
