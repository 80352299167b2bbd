# Sourced by launch/pipeline.sh and launch/experiments.sh: the cluster overrides of their CPU-only
# stages (word2vec, aggregate, explain), so that these never hold the GPU a class account has one
# of. Reads the array `cluster` (the sweep's cluster overrides), sets the array `cpu_cluster`:
#   CPU_CLUSTER="cluster=NAME cluster.KEY=VALUE ..." when set (the account is added unless given);
#   else, for a Great Lakes GPU profile, cluster=greatlakes-standard with the sweep's account;
#   else the sweep's own overrides without its GPU settings (gpus_per_node, gres).
cpu_cluster=()
account=()
for arg in "${cluster[@]}"; do
  case $arg in cluster.account=*) account=("$arg") ;; esac
done
if [[ -n ${CPU_CLUSTER:-} ]]; then
  read -r -a cpu_cluster <<<"$CPU_CLUSTER"
  if [[ " ${cpu_cluster[*]} " != *" cluster.account="* ]]; then cpu_cluster+=("${account[@]}"); fi
elif [[ " ${cluster[*]} " =~ \ cluster=greatlakes-(gpu|spgpu|mig40)\  ]]; then
  cpu_cluster=(cluster=greatlakes-standard "${account[@]}")
else
  for arg in "${cluster[@]}"; do
    case $arg in cluster.gpus_per_node=* | cluster.gres=*) ;; *) cpu_cluster+=("$arg") ;; esac
  done
fi
