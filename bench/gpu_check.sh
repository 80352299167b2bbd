#!/usr/bin/env bash
# GPU check (issue 19), in one call and one time budget (default 480 s): the CUDA tests, the
# preflight, a bf16 run, bench/core_bench.py's GPU figures (an IMDB epoch at batch 256 and the
# scoring of the 25k test documents, for the shipped defaults and the homework's model), two
# concurrent runs on one GPU; then one table with the GPU's name (bench/gpu_check.py has the
# stages and the table; bench/RESULTS.md the goals).
#
#   bash bench/gpu_check.sh [--imdb DIR] [--w2v DIR] [--small DIR] [--work DIR] [--budget S] [--cpu-only]
#
# --imdb, --w2v (or IMDB_DIR, W2V_DIR): IMDB and its word2vec files; default shared/data/imdb(-w2v)
#   in the checkout when there, else ../shared/data/imdb(-w2v).
# --small: sentiment.{train,dev,test}.csv for the bf16 and concurrent runs (default: generated).
# --work: an empty or new directory for the runs, logs and results (default bench/out/gpu-check-TIME).
# --budget (or GPU_CHECK_BUDGET): seconds for everything; each stage runs under `timeout` with its
#   own limit, cut to what is left, so one stuck stage cannot take the others' time.
# --cpu-only: use no GPU, as on a machine without one (the GPU stages then report skipped).
# Python: CLF_PYTHON when set (an interpreter with torch and clf's dependencies), else .venv as
# `bash launch/setup.sh` makes it (the project's own setup; with a GPU, --partition picks a CUDA
# build of torch for it). This checkout's src/ comes first on PYTHONPATH either way.
# Exit status: 0 when no stage failed (without a GPU the GPU stages are skipped, not failed), 1 when
# one did, 2 for bad arguments.
set -euo pipefail

SETUP_LIMIT_S=240   # launch/setup.sh, at most (it installs torch on a fresh machine)
TABLE_RESERVE_S=10  # kept back from the budget for the table
MIN_STAGE_S=5       # a stage is not started with less

die() { echo "gpu_check.sh: $*" >&2; exit 2; }

absolute() { if [[ $1 = /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }

first_dir() {  # the first of the directories that exists, else the last
  local dir
  for dir in "$@"; do
    if [[ -d $dir ]]; then echo "$dir"; return; fi
  done
  echo "$dir"
}

parse_args() {
  imdb=${IMDB_DIR:-} w2v=${W2V_DIR:-} small="" work="" budget=${GPU_CHECK_BUDGET:-480} cpu_only=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --imdb) imdb=$(absolute "${2:?--imdb needs a directory}"); shift 2 ;;
      --w2v) w2v=$(absolute "${2:?--w2v needs a directory}"); shift 2 ;;
      --small) small=$(absolute "${2:?--small needs a directory}"); shift 2 ;;
      --work) work=$(absolute "${2:?--work needs a directory}"); shift 2 ;;
      --budget) budget=${2:?--budget needs seconds}; shift 2 ;;
      --cpu-only) cpu_only=1; shift ;;
      *) die "unknown argument $1 (usage: gpu_check.sh [--imdb DIR] [--w2v DIR] [--small DIR] [--work DIR] [--budget S] [--cpu-only])" ;;
    esac
  done
  [[ $budget =~ ^[0-9]+$ ]] || die "--budget needs whole seconds, not '$budget'"
  if [[ -n $small && ! -f $small/sentiment.train.csv ]]; then die "--small $small has no sentiment.train.csv"; fi
}

prepare_work() {  # this run's own directory: never one with another run's results in it
  work=${work:-$repo/bench/out/gpu-check-$(date +%Y%m%d-%H%M%S)}
  if [[ -e $work && -n $(ls -A "$work") ]]; then die "--work $work is not empty"; fi
  mkdir -p "$work"
}

time_left() {  # seconds a stage of at most $1 s may take now (budget less elapsed less the table's)
  local left=$((budget - (SECONDS - started) - TABLE_RESERVE_S))
  echo $((left < $1 ? left : $1))
}

smi_gpu() {  # "NAME, X.Y" of the first GPU nvidia-smi lists; nothing without one
  if ! command -v nvidia-smi >/dev/null; then return 0; fi
  timeout 30 nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null | head -n 1 || true
}

setup_partition() {  # launch/setup.sh's partition whose torch build has kernels for compute capability $1:
  # gpu = the CUDA 12.6 build (Volta, 7.0), spgpu = the CUDA 12.8 build (7.5 and newer: A100, H100,
  # H200); the rule of clf.device.build_for
  if [[ $1 =~ ^([0-9]+)\.([0-9]+)$ ]] && ((BASH_REMATCH[1] * 10 + BASH_REMATCH[2] < 75)); then echo gpu; else echo spgpu; fi
}

setup() {  # sets python and setup_via; the setup row's outcome goes to the table
  local args=() limit rc=0
  if [[ -n ${CLF_PYTHON:-} ]]; then
    python=$CLF_PYTHON setup_via="CLF_PYTHON=$CLF_PYTHON"
    table_args+=(--outcome "setup=0:0")
    return
  fi
  if [[ -n $gpu && -z $cpu_only ]]; then args=(--partition "$(setup_partition "${gpu##*, }")"); fi
  python=$repo/.venv/bin/python setup_via="bash launch/setup.sh${args[*]:+ ${args[*]}}"
  limit=$(time_left "$SETUP_LIMIT_S")
  if ((limit < MIN_STAGE_S)); then
    table_args+=(--not-run "setup=budget") python=""
    return
  fi
  echo "[gpu-check] setup: $setup_via (limit $limit s)"
  timeout --kill-after=10 "$limit" bash launch/setup.sh "${args[@]}" </dev/null >"$work/setup.log" 2>&1 || rc=$?
  table_args+=(--outcome "setup=$rc:$limit")
  if ((rc != 0)); then python=""; fi
}

run_stage() {  # NAME CAP: bench/gpu_check.py's stage under min(CAP, budget left) seconds; sets stage_rc
  # (its exit status; empty when the budget left no time for it)
  local name=$1 cap=$2 limit begun=$SECONDS
  limit=$(time_left "$cap")
  if ((limit < MIN_STAGE_S)); then
    table_args+=(--not-run "$name=budget") stage_rc=""
    return
  fi
  stage_rc=0
  timeout --kill-after=10 "$limit" "$python" bench/gpu_check.py stage "$name" "${stage_args[@]}" --limit "$limit" \
    </dev/null >"$work/$name.log" 2>&1 || stage_rc=$?
  table_args+=(--outcome "$name=$stage_rc:$limit")
  echo "[gpu-check] $name: exit status $stage_rc after $((SECONDS - begun)) s (limit $limit s)"
}

run_stages() {  # every stage bench/gpu_check.py lists; none after a failed environment stage
  local listing line name cap ready=${python:+1}
  listing=$("$bootstrap" bench/gpu_check.py stages)
  while read -r name cap; do
    [[ $name =~ ^[a-z0-9-]+$ && $cap =~ ^[0-9]+$ ]] || die "bench/gpu_check.py stages printed '$name $cap'"
    if [[ -z $ready ]]; then
      table_args+=(--not-run "$name=setup")
      continue
    fi
    run_stage "$name" "$cap"
    if [[ $name = environment && -n $stage_rc && $stage_rc != 0 ]]; then ready=""; fi
  done <<<"$listing"
}

main() {
  parse_args "$@"
  repo=$(cd "$(dirname "$0")/.." && pwd)
  cd "$repo"
  imdb=${imdb:-$(absolute "$(first_dir shared/data/imdb ../shared/data/imdb)")}
  w2v=${w2v:-$(absolute "$(first_dir shared/data/imdb-w2v ../shared/data/imdb-w2v)")}
  bootstrap=${PYTHON:-python3}  # runs the stage listing and the table: the standard library suffices
  command -v "$bootstrap" >/dev/null || die "no $bootstrap (PYTHON names the interpreter for the table)"
  started=$SECONDS
  prepare_work
  export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" CLF_CACHE_DIR=$work/cache PYTHONUNBUFFERED=1
  if [[ -n $cpu_only ]]; then export CUDA_VISIBLE_DEVICES=""; fi
  gpu=$(smi_gpu)
  table_args=() stage_args=(--work "$work" --imdb "$imdb" --w2v "$w2v")
  if [[ -n $small ]]; then stage_args+=(--small "$small"); fi
  if [[ -n $cpu_only ]]; then stage_args+=(--cpu-only); fi
  setup
  run_stages
  "$bootstrap" bench/gpu_check.py table --work "$work" "${table_args[@]}" --setup-via "$setup_via" \
    --smi-gpu "$gpu" --elapsed $((SECONDS - started)) --budget "$budget"
}

main "$@"
