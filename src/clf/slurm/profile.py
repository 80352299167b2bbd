"""Cluster profiles (``conf/cluster/*.yaml``): checks before anything is submitted, and the
submitit parameters a profile becomes.

submitit writes the profile's values into a shell script (``#SBATCH`` lines, setup lines, the
log paths), so every string that reaches it must match a conservative pattern: a value holding
a newline, ``;``, a backtick or ``$(...)`` could run commands. Such a value is refused with a
one-line error before any file is written or any job exists.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Mapping

from clf.config.schema import ClusterConfig
from clf.errors import ClfError

EXECUTORS = ("local", "slurm")
# partition, account, qos: Slurm names (a comma-separated list of partitions is allowed)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(,[A-Za-z0-9][A-Za-z0-9_.-]*)*")
_GRES = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:,-]*")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,59}")
_FLAG = re.compile(r"[a-z][a-z0-9-]*")
_FLAG_VALUE = re.compile(r"[A-Za-z0-9_.:,=@%/+*-]*")
# setup lines are shell commands by design, but only simple ones: no ; & | < > ( ) ` \ quotes or newlines
_SETUP = re.compile(r"[A-Za-z0-9 _./~=:+@%,{}$-]+")
_PATH = re.compile(r"/[A-Za-z0-9_./+=,@:-]*")
# flags clf sets itself (logs, array, signal, dependency): a profile must not replace them
RESERVED_FLAGS = frozenset({"output", "error", "array", "open-mode", "signal", "dependency", "job-name", "wrap",
                            "parsable", "chdir", "export", "requeue", "no-requeue"})
# the variable setup lines can use to activate the venv `clf submit` ran from
VENV_VARIABLE = "CLF_VENV"


def cluster_from(data: Mapping[str, Any]) -> ClusterConfig:
    """The profile as a typed object (from a composed config's ``cluster`` node or sweep.json)."""
    known = {f.name for f in fields(ClusterConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ClfError(f"unknown cluster setting(s): {', '.join(unknown)}")
    cluster = ClusterConfig(**dict(data))
    cluster.setup = list(cluster.setup or [])
    cluster.additional_parameters = dict(cluster.additional_parameters or {})
    return cluster


def as_dict(cluster: ClusterConfig) -> dict[str, Any]:
    return asdict(cluster)


def _require(pattern: re.Pattern[str], value: str, what: str, allowed: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ClfError(f"{what}={value!r} is not allowed: it is written into the sbatch script and may contain "
                       f"only {allowed}")


def job_name(name: str) -> str:
    """The Slurm job name of sweep ``name``: ``clf-NAME`` (``clf`` for the default name)."""
    _require(_JOB_NAME, name, "name", "letters, digits and _ . + - (at most 60; it names the Slurm jobs)")
    return "clf" if name == "clf" else f"clf-{name}"


def check_script_path(path: Path, what: str) -> None:
    """Paths submitit writes into the script (logs, the python executable)."""
    _require(_PATH, str(path), what, "letters, digits and _ . / + = , @ : - (no spaces)")


def check_cluster(cluster: ClusterConfig) -> None:
    """Raise ClfError (one line) on any value that must not reach sbatch or makes no sense."""
    where = f"cluster={cluster.name}"
    if cluster.executor not in EXECUTORS:
        raise ClfError(f"cluster.executor={cluster.executor!r} is not one of {', '.join(EXECUTORS)}")
    if cluster.account_required and not cluster.account:
        raise ClfError(f"{where} needs cluster.account=ACCOUNT (on Great Lakes your class account "
                       "<course><term>_class, e.g. si630f25_class; `my_accounts` lists yours)")
    for key in ("cpus_per_task", "timeout_min", "nodes", "tasks_per_node", "array_parallelism", "signal_delay_s",
                "runs_per_task", "requeue_window_s"):
        if getattr(cluster, key) < 1:
            raise ClfError(f"cluster.{key}={getattr(cluster, key)} must be at least 1")
    for key in ("gpus_per_node", "max_num_timeout", "max_num_preempt"):
        if getattr(cluster, key) < 0:
            raise ClfError(f"cluster.{key}={getattr(cluster, key)} must not be negative")
    _check_workers(cluster)
    if not cluster.mem_gb > 0:
        raise ClfError(f"cluster.mem_gb={cluster.mem_gb} must be positive (always set it: Great Lakes' default "
                       "is 768 MB per CPU)")
    if cluster.signal_delay_s >= cluster.timeout_min * 60:
        raise ClfError(f"cluster.signal_delay_s={cluster.signal_delay_s} must be shorter than the time limit "
                       f"(cluster.timeout_min={cluster.timeout_min} min)")
    if cluster.executor == "local" and cluster.nodes != 1:
        raise ClfError("cluster=local runs on this machine only: cluster.nodes must be 1")
    for key in ("partition", "account", "qos"):
        value = getattr(cluster, key)
        if value is not None:
            _require(_NAME, value, f"cluster.{key}", "letters, digits and _ . - (and , between partitions)")
    if cluster.gres is not None:
        _require(_GRES, cluster.gres, "cluster.gres", "letters, digits and _ . : , -")
    for line in cluster.setup:
        _require(_SETUP, line, "cluster.setup line", "one simple command: letters, digits, spaces and "
                 "_ . / ~ = : + @ % , { } $ - (no ; & | < > ( ) ` \\ quotes or newlines)")
    for key, value in cluster.additional_parameters.items():
        _require(_FLAG, key, "cluster.additional_parameters key", "lower-case letters, digits and -")
        if key in RESERVED_FLAGS:
            raise ClfError(f"cluster.additional_parameters.{key} is set by clf itself and cannot be changed")
        if not isinstance(value, bool):
            _require(_FLAG_VALUE, str(value), f"cluster.additional_parameters.{key}",
                     "letters, digits and _ . : , = @ % / + * -")


def _check_workers(cluster: ClusterConfig) -> None:
    """Worker settings that make sense together (``clf.slurm.worker``)."""
    if cluster.workers < 0:
        raise ClfError(f"cluster.workers={cluster.workers} must not be negative (0: one task per run)")
    for key in ("runs_per_worker", "worker_heartbeat_s", "max_crashes"):
        if getattr(cluster, key) < 1:
            raise ClfError(f"cluster.{key}={getattr(cluster, key)} must be at least 1")
    if not cluster.worker_seconds_per_step > 0:
        raise ClfError(f"cluster.worker_seconds_per_step={cluster.worker_seconds_per_step} must be positive")
    if cluster.worker_dead_after_s <= 3 * cluster.worker_heartbeat_s:
        raise ClfError(f"cluster.worker_dead_after_s={cluster.worker_dead_after_s} must be more than 3 heartbeats "
                       f"(cluster.worker_heartbeat_s={cluster.worker_heartbeat_s})")
    if not cluster.workers:
        return
    if cluster.runs_per_task > 1:
        raise ClfError("cluster.workers and cluster.runs_per_task > 1 exclude each other: workers already train "
                       "many runs per job, as many as fit")
    if cluster.nodes > 1 or cluster.tasks_per_node > 1:
        raise ClfError("cluster.workers trains single-process runs: with cluster.nodes or cluster.tasks_per_node "
                       "above 1 (data-parallel runs) use one task per run")


def slurm_parameters(cluster: ClusterConfig, slurm_job_name: str, dependency: str | None) -> dict[str, Any]:
    """``SlurmExecutor.update_parameters`` arguments (sbatch flags, setup lines, array limit)."""
    params: dict[str, Any] = {
        "job_name": slurm_job_name, "time": cluster.timeout_min, "nodes": cluster.nodes,
        "ntasks_per_node": cluster.tasks_per_node, "cpus_per_task": cluster.cpus_per_task,
        "mem": _memory(cluster.mem_gb), "signal_delay_s": cluster.signal_delay_s,
        "array_parallelism": cluster.array_parallelism, "setup": list(cluster.setup),
        "additional_parameters": dict(cluster.additional_parameters),
    }
    for key in ("partition", "account", "qos", "gres"):
        if getattr(cluster, key):
            params[key] = getattr(cluster, key)
    if cluster.gpus_per_node and not cluster.gres:
        params["gpus_per_node"] = cluster.gpus_per_node
    if dependency:
        params["dependency"] = dependency
    return params


def local_parameters(cluster: ClusterConfig) -> dict[str, Any]:
    """``LocalExecutor.update_parameters`` arguments. submitit's local executor sets
    CUDA_VISIBLE_DEVICES to the first ``gpus_per_node`` GPUs; with 0 (the local profile's
    default) the runs see this machine's GPUs as the submitting shell does."""
    params = {"timeout_min": cluster.timeout_min, "tasks_per_node": cluster.tasks_per_node,
              "gpus_per_node": cluster.gpus_per_node, "signal_delay_s": cluster.signal_delay_s,
              "setup": list(cluster.setup)}
    if cluster.gpus_per_node == 0:
        gpus = machine_gpus()
        params.update(gpus_per_node=len(gpus), visible_gpus=gpus)
    return params


def machine_gpus() -> tuple[int, ...]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's indices, else every NVIDIA GPU."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return tuple(range(len(list(Path("/proc/driver/nvidia/gpus").glob("*")))))
    return tuple(int(v) for v in value.split(",") if v.strip().isdigit())


def is_gpu_profile(cluster: dict[str, Any]) -> bool:
    """A profile that requests a GPU (the local profile's ``gpus_per_node: 0`` does not)."""
    return int(cluster.get("gpus_per_node") or 0) > 0 or "gpu" in str(cluster.get("gres") or "")


def implied_device(config: dict[str, Any], overrides: list[str]) -> str:
    """The device of a run submitted with ``overrides``: ``cuda`` on a GPU profile when no
    override names a device (an explicit ``device=cpu`` or ``device=auto`` is kept)."""
    explicit = any(o.split("=", 1)[0].lstrip("+~") == "device" for o in overrides)
    if not explicit and config.get("device") == "auto" and is_gpu_profile(config.get("cluster") or {}):
        return "cuda"
    return str(config.get("device"))


def check_python() -> None:
    """The interpreter jobs run (submitit writes its path into the script)."""
    check_script_path(Path(sys.executable), "the python executable")


def _memory(mem_gb: float) -> str:
    return f"{int(mem_gb)}G" if float(mem_gb).is_integer() else f"{int(round(mem_gb * 1024))}M"
