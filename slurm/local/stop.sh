#!/usr/bin/env bash
# Stop the local Slurm cluster started by start.sh, in reverse start order.
# Idempotent: no error when nothing runs; stale pid files are removed.
# Jobs' slurmstepd processes are not killed: Slurm picks them up again on the
# next start.sh (cancel jobs first with `scancel` for a clean slate).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

require_root
lock_state
# Reverse start order; daemons in one call stop in parallel.
slurmds=()
for file in "$RUN_DIR"/slurmd*.pid; do  # every node's slurmd, also of an earlier node set
    [[ -e $file ]] && slurmds+=("$(basename "$file" .pid)")
done
stop_daemons "${slurmds[@]}" slurmctld
stop_daemons slurmdbd
stop_daemons mariadbd munged
log "stopped (state kept in $STATE)"
