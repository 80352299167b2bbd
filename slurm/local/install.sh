#!/usr/bin/env bash
# Install a single-node Slurm cluster (with accounting) from Debian packages.
#
#   sudo slurm/local/install.sh      # or as root, e.g. in CI
#
# Idempotent: when every binary we need is already on PATH the script returns
# at once without touching apt. Nothing is started here; see start.sh.
set -euo pipefail

# Debian packages providing the daemons and client tools used by start.sh.
PACKAGES=(
    slurm-wlm       # meta package: slurmctld, slurmd, slurm-client
    slurmctld
    slurmd
    slurm-client    # sbatch, srun, squeue, sinfo, sacct, sacctmgr, scontrol
    slurmdbd        # accounting daemon (sacct needs it)
    munge           # authentication between Slurm daemons and clients
    mariadb-server  # storage for slurmdbd
    mariadb-client
)

# Executables start.sh / stop.sh / status.sh rely on.
BINARIES=(
    slurmctld slurmd slurmdbd munged mungekey
    sbatch srun squeue sinfo sacct sacctmgr scontrol scancel
    mariadbd mariadb mariadb-install-db mariadb-admin
)

# The daemons live in /usr/sbin, which a non-login PATH may lack.
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for bin in "${BINARIES[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install.sh: Slurm, slurmdbd, munge and MariaDB already installed."
    exit 0
fi
echo "install.sh: missing: ${missing[*]} -> installing ${PACKAGES[*]}"

if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: must run as root (apt-get install)" >&2
    exit 1
fi

# Keep the packages' maintainer scripts from starting services: there is no
# systemd here and start.sh runs the daemons itself with its own config.
# Docker-style images often ship such a policy file already; only add (and
# later remove) one when it is absent.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
# The package lists may be missing or stale on a fresh machine.
apt-get update -q
apt-get install "${apt_opts[@]}" --no-install-recommends "${PACKAGES[@]}"

echo "install.sh: done ($(slurmctld -V))"
