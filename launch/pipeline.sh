#!/usr/bin/env bash
# word2vec job -> classifier sweep (afterok) -> aggregate job (afterany), submitted at once:
#
#   launch/pipeline.sh OUT [overrides...]
#   launch/pipeline.sh sweeps/hw cluster=greatlakes-gpu cluster.account=si630f25_class \
#       data=imdb data.dir=../shared/data/imdb experiment=heads
#
# Overrides of cluster / cluster.* go to the sweep, data / data.* to the word2vec job and the
# sweep, the rest to the sweep only (Hydra's sweep syntax and experiment= work). The CPU-only
# stages (word2vec, aggregate) go to a CPU profile with the same account: greatlakes-standard
# for a Great Lakes GPU profile, CPU_CLUSTER="cluster=... ..." to choose (launch/cpu_stages.sh).
# W2V_ARGS adds `clf w2v` settings, e.g. W2V_ARGS="vector_size=100 epochs=10".
#   OUT/w2v        one job: clf w2v ... out=OUT/w2v/vectors
#   OUT/sweep      the job array, after the w2v job completed: embeddings=word2vec embeddings.dir=OUT/w2v/vectors
#   OUT/aggregate  one job, after the sweep ended however it did: clf aggregate OUT/sweep --out OUT/results/sweep
# Returns at once; `clf status OUT/w2v OUT/sweep OUT/aggregate` says where it stands. With
# cluster=local (the default) each stage's runner waits for the one before. CLF names the clf
# command (default: clf on PATH).
set -euo pipefail
out=${1:?usage: launch/pipeline.sh OUT [overrides...]}
shift
read -r -a clf <<<"${CLF:-clf}"
read -r -a w2v_args <<<"${W2V_ARGS:-}"
cluster=() data=() sweep=()
for arg in "$@"; do
  case $arg in
    cluster=* | cluster.*) cluster+=("$arg") ;;
    data=* | data.*) data+=("$arg") ;;
    *) sweep+=("$arg") ;;
  esac
done
. "$(dirname "$0")/cpu_stages.sh"
"${clf[@]}" submit "${cpu_cluster[@]}" sweep_dir="$out/w2v" name=w2v --job w2v -- \
  "${data[@]}" out="$out/w2v/vectors" "${w2v_args[@]}"
"${clf[@]}" submit "${cluster[@]}" sweep_dir="$out/sweep" --after "$out/w2v" "${data[@]}" \
  embeddings=word2vec embeddings.dir="$out/w2v/vectors" "${sweep[@]}"
"${clf[@]}" submit "${cpu_cluster[@]}" sweep_dir="$out/aggregate" name=aggregate --after-any "$out/sweep" \
  --job aggregate -- "$out/sweep" --out "$out/results/sweep"
echo "pipeline: clf status $out/w2v $out/sweep $out/aggregate"
