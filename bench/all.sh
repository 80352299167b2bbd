#!/usr/bin/env bash
# Every bench whose figures bench/RESULTS.md's summary quotes, at one commit, then the summary
# made from their output (issue 21). Each stage's output goes to OUT/STAGE.txt, headed by the
# commit and date it ran at (a stage skipped keeps its previous file, with its own commit);
# bench/summary.py reads them and prints the summary table, and with --write replaces the one in
# bench/RESULTS.md. Figures are of the shipped defaults unless a row names a configuration.
#
#   bash bench/all.sh [--only STAGE ...] [--skip STAGE ...] [--out DIR] [--write]
#
# Stages, in order (minutes on the 2-core VM): vectors (lowercased IMDB vectors, clf w2v's
# defaults, made once: 6), defaults (issue 12's defaults, the previous ones and the shipped
# defaults, 3 seeds each, side by side: 4), size (run_size.py: 1), overhead (overhead_bench.py: 4),
# core (core_bench.py --defaults: 5), aggregate (1), slurm (slurm_bench.py, the local cluster: 3),
# pack (pack_bench.py: 5), workers (worker_bench.py: 40), demo (launch/demo.sh: 2), w2v-speed (15), w2v-quality (15),
# quality (quality.py, five datasets against fastText: 25), halving (halving_bench.py: 8),
# gpu (gpu_check.sh: skipped without a GPU).
# Environment: PYTHON (default .venv/bin/python), DATA (IMDB, default ../shared/data/imdb),
# CASED_VECTORS (the homework's case-kept vectors, default ../shared/data/imdb-w2v).
# The quality stage needs fastText (`pip install -e '.[bench]'`): checked before any stage runs.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=(vectors defaults size overhead core aggregate slurm pack workers demo w2v-speed w2v-quality quality halving gpu)
out=bench/out/all only=() skip=() write=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --write) write=(--write bench/RESULTS.md); shift ;;
    --only|--skip)
      list=$1; shift
      while (($#)) && [[ $1 != --* ]]; do
        [[ " ${STAGES[*]} " == *" $1 "* ]] || { echo "bench/all.sh: no stage $1 (stages: ${STAGES[*]})" >&2; exit 2; }
        if [[ $list == --only ]]; then only+=("$1"); else skip+=("$1"); fi
        shift
      done ;;
    *) echo "bench/all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-.venv/bin/python}
data=$(realpath "${DATA:-../shared/data/imdb}")
cased=$(realpath "${CASED_VECTORS:-../shared/data/imdb-w2v}")
vectors=$(realpath -m bench/out/w2v-imdb-lc)
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" CLF_CACHE_DIR=${CLF_CACHE_DIR:-$PWD/bench/out/cache}

wanted() {
  local stage=$1
  [[ " ${skip[*]-} " == *" $stage "* ]] && return 1
  ((${#only[@]} == 0)) || [[ " ${only[*]} " == *" $stage "* ]]
}

# stage NAME COMMAND...: run it, its output (stdout and stderr) to OUT/NAME.txt under a header line
stage() {
  local name=$1; shift
  wanted "$name" || return 0
  local file="$out/$name.txt" started=$SECONDS
  echo "== $name: $*" >&2
  {
    echo "# stage $name at $("$py" bench/provenance.py): $*"
    "$@" 2>&1 || echo "# stage $name FAILED (exit status $?)"
    echo "# stage $name took $((SECONDS - started)) s"
  } >"$file.tmp"
  mv "$file.tmp" "$file"
  tail -n 3 "$file" >&2
}

if wanted quality && ! "$py" -c "import fasttext" 2>/dev/null; then
  echo "bench/all.sh: stage quality needs fastText: $py -m pip install -e '.[bench]' (or --skip quality)" >&2
  exit 2
fi

b="nice -n 5 $py"
if wanted vectors || wanted defaults || wanted size || wanted overhead || wanted core; then
  [[ -s $vectors/word2vec.pt ]] || stage vectors $b -m clf w2v data=imdb data.dir="$data" out="$vectors"
fi
stage defaults $b bench/defaults_bench.py --data "$data" --w2v "$vectors" --cased-w2v "$cased" --seeds 0 1 2 \
  --candidates shipped issue12 shipped-fp32 previous --first-seed-only shipped-fp32 previous --out bench/out/defaults
stage size $b bench/run_size.py --data "$data" --w2v "$vectors"
stage overhead $b bench/overhead_bench.py --data "$data" --w2v "$vectors" --repeats 5 --no-phases
stage core $b bench/core_bench.py --defaults --data "$data" --w2v "$vectors"
stage aggregate $b bench/aggregate_bench.py --runs 1000 --repeats 7
stage slurm $b bench/slurm_bench.py --repeats 5 --preemptions 3
stage pack $b bench/pack_bench.py --runs-per-task 8 --steps 100
stage workers $b bench/worker_bench.py --data "$data" --w2v "$vectors"
stage demo bash -c "time bash launch/demo.sh bench/out/demo-\$(date +%s)"
stage w2v-speed $b bench/w2v_speed.py --data "$data" --rounds 1
stage w2v-quality $b bench/w2v_quality.py --data "$data" --reference "$cased"
stage quality nice -n 19 "$py" bench/quality.py --imdb "$data"
stage halving nice -n 10 "$py" bench/halving_bench.py --data "$data" --w2v "$vectors" --parallel 3 --cpus-per-task 1
stage gpu env CLF_PYTHON="$py" bash bench/gpu_check.sh --imdb "$data" --w2v "$vectors"
"$py" bench/summary.py --outputs "$out" "${write[@]}"
