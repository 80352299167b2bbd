"""Names that several modules spell: the files of a run directory, the states a run or job can be
in, and the config keys that do not change what a run computes.

Kept free of imports so that quick commands (``clf status``) and the training loop share them.
"""

from __future__ import annotations

# --- files and folders of a run directory (README.md, "What a run writes") ---
METRICS = "metrics.json"            # rewritten at each evaluation; final scores when completed
CONFIG = "config.yaml"              # the resolved config
TRAIN_LOG = "train.log"
CHECKPOINTS = "checkpoints"         # last.pt, previous.pt, best.pt
LAST, PREVIOUS, BEST = "last.pt", "previous.pt", "best.pt"
TENSORBOARD = "tb"
PREDICTIONS = "predictions"         # dev.csv, test.csv
JOB_STATUS = "status.json"          # a job's record (slurm/jobfiles.py)
ATTEMPTS = "attempts.jsonl"
RECORD_RESERVE = ".record-reserve"   # room kept for a job's last record on a full disk (slurm/jobfiles.py)
SWEEP_MANIFEST = "sweep.json"       # marks a sweep directory (slurm/manifest.py)
HALVING_RECORD = "halving.json"     # successive halving's rungs and decisions (slurm/halving.py)
CANCEL_RECORD = "cancelled.json"   # the jobs `clf cancel` cancelled, and when (slurm/cancels.py)
HALVING_JOBS = ".halving"           # its decision jobs' records, rung-K/ (hidden: not runs to aggregate)
RUN_SUBDIRS = frozenset({TENSORBOARD, CHECKPOINTS, PREDICTIONS})

# --- states: metrics.json's "status" and status.json's "state" ---
PENDING, RUNNING, REQUEUED, INTERRUPTED = "pending", "running", "requeued", "interrupted"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
STOPPED = "stopped"                 # metrics.json: trained to train.stop_at_step (a halving rung), resumable
FINAL_STATES = (COMPLETED, FAILED, CANCELLED)

# --- config keys that do not change what a run computes ---
# where and how a run runs
RUNTIME_KEYS = ("run_dir", "sweep_dir", "name", "device", "cluster", "train.progress", "train.num_threads",
                "train.checkpoint_every", "train.checkpoint_seconds", "train.keep_checkpoints", "data.cache_dir")
# where its inputs are read from (their content is checked: the vocabulary's fingerprint)
INPUT_PATH_KEYS = ("data.dir", "data.train", "data.dev", "data.test", "data.unlabeled", "embeddings.dir")
# how a sweep searches (search=grid|halving) and where a run of it pauses (a rung's budget): the
# schedule and data order span the full budget, so neither changes the steps a run computes
SEARCH_KEYS = ("search", "train.stop_at_step")
# may differ when a run resumes from its checkpoint (a promoted run resumes with a larger stop step)
RESUMABLE_CHANGES = RUNTIME_KEYS + INPUT_PATH_KEYS + SEARCH_KEYS
# left out of TensorBoard's HParams entry
NOT_HPARAMS = RUNTIME_KEYS + INPUT_PATH_KEYS + SEARCH_KEYS
# never grouped on by `clf aggregate` unless asked (seeds are repeats of one configuration)
NOT_GROUPED = ("seed",) + RUNTIME_KEYS + SEARCH_KEYS


def key_in(key: str, keys: tuple[str, ...]) -> bool:
    """``key`` is one of ``keys`` or lies under one of them (``cluster.account`` under ``cluster``)."""
    return any(key == k or key.startswith(k + ".") for k in keys)
