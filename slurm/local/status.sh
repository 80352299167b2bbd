#!/usr/bin/env bash
# Print whether each daemon of the local Slurm cluster runs, then `sinfo`.
# Exit status 0 when all daemons run and every node is usable, 1 otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

ok=1
for name in "${DAEMONS[@]}"; do
    if pid=$(pid_of "$name"); then
        printf '%-14s running (pid %s)\n' "$name" "$pid"
    else
        printf '%-14s stopped\n' "$name"
        ok=0
    fi
done
echo "state: $STATE  logs: $LOG_DIR  SLURM_CONF=$SLURM_CONF"
if is_running slurmctld; then
    timeout 10 sinfo || ok=0
    nodes_usable || ok=0
fi
if ((ok)); then
    echo "cluster: up"
else
    echo "cluster: not (fully) up"
    exit 1
fi
