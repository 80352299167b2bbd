# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared settings and helpers for the local Slurm cluster (several nodes on one machine).
# Sourced by start.sh, stop.sh and status.sh; not meant to be run directly.
#
# Environment variables (all optional):
#   CLF_SLURM_STATE    state directory: configs, logs, pid files, databases
#                      [/var/lib/clf-slurm]
#   CLF_SLURM_CLUSTER  Slurm cluster name [clf]
#   CLF_SLURM_NODES    nodes, one slurmd each (`slurmd -N NAME`) [3]
#   CLF_SLURM_CPUS     CPUs advertised per node, so that several small
#                      jobs share the real cores [max(8, real CPUs)]
#   CLF_SLURM_MEMORY_MB  RealMemory advertised per node (not enforced) [64000]
#   CLF_SLURM_MAX_ARRAY_SIZE  MaxArraySize (a sweep is split above it) [10001]
#   CLF_SLURM_DB_PORT  TCP port of the private MariaDB on 127.0.0.1 [3307]
#   CLF_SLURM_TIMEOUT  seconds to wait for each daemon to come up [120]
#   CLF_SLURM_LINK_ETC 1: point /etc/slurm/slurm.conf at the generated config
#                      so that plain `sbatch`/`squeue`/`sacct` find it [1]

STATE=${CLF_SLURM_STATE:-/var/lib/clf-slurm}
ETC_DIR=$STATE/etc        # slurm.conf, slurmdbd.conf, mariadb.cnf
LOG_DIR=$STATE/log        # one log file per daemon
RUN_DIR=$STATE/run        # pid files and the MariaDB socket
CLUSTER=${CLF_SLURM_CLUSTER:-clf}
DB_PORT=${CLF_SLURM_DB_PORT:-3307}
DB_SOCKET=$RUN_DIR/mariadb.sock
DB_DATA=$STATE/mysql
MUNGE_DIR=$STATE/munge
# Default socket path, so that clients need no extra configuration.
MUNGE_SOCKET=/run/munge/munge.socket.2
TIMEOUT=${CLF_SLURM_TIMEOUT:-120}
LINK_ETC=${CLF_SLURM_LINK_ETC:-1}
HOST=$(hostname -s)
SLURMD_PORT0=6830         # node i's slurmd listens on port SLURMD_PORT0 + i
CLASS_ACCOUNT=si630f25_class
OTHER_ACCOUNT=otherlab
NODE_COUNT=${CLF_SLURM_NODES:-3}
[[ $NODE_COUNT =~ ^[1-9][0-9]?$ ]] || { echo "CLF_SLURM_NODES=$NODE_COUNT: give 1-99 nodes" >&2; exit 1; }
# Node names as on Great Lakes (gl3001, gl3002, ...); /etc/hosts maps them to 127.0.0.1.
NODES=()
for ((i = 1; i <= NODE_COUNT; i++)); do NODES+=("gl$((3000 + i))"); done

# The daemons and mariadb-install-db live in /usr/sbin.
export PATH=$PATH:/usr/sbin:/sbin

# Every Slurm daemon and client started from these scripts uses our config.
export SLURM_CONF=$ETC_DIR/slurm.conf

# Daemons in start order; each writes $RUN_DIR/<name>.pid and its process
# name (/proc/PID/comm) is <name> up to a '-' (slurmd-gl3001 is a slurmd).
SLURMDS=("${NODES[@]/#/slurmd-}")
DAEMONS=(munged mariadbd slurmdbd slurmctld "${SLURMDS[@]}")

# Messages go to stderr and, once the state directory exists, to
# $LOG_DIR/scripts.log (a history of start/stop runs).
log() {
    local line
    line=$(printf '[clf-slurm %s] %s' "$(date '+%F %T.%3N')" "$*")
    echo "$line" >&2
    if [[ -d $LOG_DIR ]]; then echo "$line" >>"$LOG_DIR/scripts.log"; fi
}
die() { log "ERROR: $*"; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (the daemons run as root)"
}

# Serialise start.sh/stop.sh runs on the same state directory.
lock_state() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock 9
}

pidfile_of() { echo "$RUN_DIR/$1.pid"; }

# True while process $1 exists and is not a zombie.
pid_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# Print the pid of daemon $1 if its pid file names a live process of that
# name; fail otherwise (no pid file, stale pid, zombie, or pid reused by
# another program).
pid_of() {
    local file pid
    file=$(pidfile_of "$1")
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    pid=${pid//[[:space:]]/}
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${1%%-*}" ]] || return 1
    pid_alive "$pid" || return 1
    echo "$pid"
}

is_running() { pid_of "$1" >/dev/null; }

# Show the end of daemon $1's log (for error messages).
show_log() {
    local file=$LOG_DIR/$1.log
    [[ -f $file ]] || return 0
    echo "----- last lines of $file -----" >&2
    tail -n 25 "$file" >&2
    echo "-----" >&2
}

# wait_until DAEMON DESCRIPTION COMMAND...
# Poll COMMAND until it succeeds. Fail with the daemon's log when it exits
# meanwhile or when $TIMEOUT seconds pass.
wait_until() {
    local daemon=$1 what=$2
    shift 2
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! is_running "$daemon"; then
            show_log "$daemon"
            die "$daemon exited while waiting for: $what"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$daemon"
            die "timed out after ${TIMEOUT}s waiting for: $what"
        fi
        sleep 0.2
    done
}

# wait_for_pid DAEMON: after launching a daemon, wait until its pid file
# names a live process.
wait_for_pid() {
    local deadline=$((SECONDS + 30))
    until is_running "$1"; do
        if ((SECONDS >= deadline)); then
            show_log "$1"
            die "$1 did not start (no live pid in $(pidfile_of "$1"))"
        fi
        sleep 0.1
    done
}

# stop_daemons NAME...: SIGTERM to all of them at once, wait up to 30 s for
# all to exit, then SIGKILL what is left. No error for daemons that do not
# run; stale pid files are removed.
stop_daemons() {
    local name pid pids=() deadline=$((SECONDS + 30))
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        while pid_alive "$pid"; do
            if ((SECONDS >= deadline)); then
                log "pid $pid did not exit after SIGTERM; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            sleep 0.1
        done
    done
    for name in "$@"; do
        rm -f "$(pidfile_of "$name")"
    done
}

# Run the SQL on stdin as the database's root user (unix socket auth).
db_sql() {
    mariadb --no-defaults --socket="$DB_SOCKET" --user=root --batch
}

# "NAME STATE" per node as sinfo reports it, e.g. "gl3001 idle", "gl3002 down*".
node_states() {
    timeout 10 sinfo --noheader --Node --format="%N %T" 2>/dev/null | sort -u
}

# True when every node responds and can run jobs.
nodes_usable() {
    local states usable
    states=$(node_states)
    usable=$(grep -cE ' (idle|mixed|allocated|completing)$' <<<"$states")
    ((usable == NODE_COUNT))
}
