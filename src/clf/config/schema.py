"""Typed schema of the config tree in ``conf/``: one dataclass per config group.

Hydra merges the YAML files onto these dataclasses, so an unknown key or a value of the
wrong type is rejected before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING


@dataclass
class TokenizerConfig:
    """The homework's ``RegexpTokenizer(r'\\w+')`` words, lowercased, then their bigrams: the defaults
    that beat fastText on every dataset of bench/quality.py (issue 12). ``experiment=homework``
    keeps the homework's case-kept words (``lowercase=false``, ``ngrams=1``)."""

    pattern: str = r"\w+"
    lowercase: bool = True
    strip_html: bool = False
    ngrams: int = 2


@dataclass
class DataConfig:
    """Where the documents come from (``source``: demo, csv or imdb) and how they are read."""

    source: str = MISSING
    dir: Optional[str] = None
    train: Optional[str] = None
    dev: Optional[str] = None
    test: Optional[str] = None
    unlabeled: Optional[str] = None
    id_column: str = "inst_id"
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"
    # keep only the first N training documents (learning curves); null keeps all
    train_limit: Optional[int] = None
    # demo corpus: fractions of the labelled tweets held out for dev and test
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 630
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # vocabulary built from the training text when no embeddings bring one
    min_count: int = 2
    max_size: Optional[int] = None
    # bigrams (tokenizer.ngrams=2) in the vocabulary: pairs of known words seen this often in train
    bigram_min_count: int = 3
    bigram_max_size: Optional[int] = 50000
    # token-id cache; null: $CLF_CACHE_DIR or ~/.cache/clf
    cache_dir: Optional[str] = None


@dataclass
class EmbeddingsConfig:
    """Initial word vectors: ``random`` or the homework's ``word2vec`` artifacts in ``dir``."""

    kind: str = "random"
    dir: Optional[str] = None
    dim: int = 50
    freeze: bool = False


@dataclass
class ModelConfig:
    """The DocumentAttentionClassifier and its optional extras."""

    num_heads: int = 8   # the homework's 4 (experiment=homework) fell behind fastText on tweets (issue 12)
    head_init: float = 0.5
    hidden_layers: int = 0
    hidden_size: int = 128
    dropout: float = 0.1
    positional: bool = False
    max_len: int = 512
    max_tokens: Optional[int] = None


@dataclass
class OptimConfig:
    """AdamW, gradient clipping and the learning-rate schedule."""

    lr: float = 8e-3
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # lazy: AdamW on the embedding rows a batch touches; dense: torch.optim.AdamW on all rows
    embedding_update: str = "lazy"
    grad_clip: Optional[float] = 1.0
    schedule: str = "linear"
    warmup_steps: int = 40
    plateau_factor: float = 0.5
    plateau_patience: int = 2


@dataclass
class TrainConfig:
    """Batching, length of training, evaluation, logging and checkpoint cadence."""

    batch_size: int = 128
    # null: min_epochs epochs or min_steps steps, whichever is more (clf.train.budget); N: exactly N epochs
    epochs: Optional[int] = None
    min_epochs: int = 2
    min_steps: int = 450
    # min_steps counts until a run has trained on this many tokens (null: always)
    min_steps_tokens: Optional[int] = 15_000_000
    max_steps: Optional[int] = None
    # stop (resumably) at this step, a multiple of eval_every: a successive-halving rung's budget;
    # the LR schedule and data order still span the full budget. null: train to the end
    stop_at_step: Optional[int] = None
    # documents are sorted by length inside windows of this many batches
    bucket_batches: int = 50
    eval_batch_tokens: int = 262144
    log_every: int = 10
    eval_every: int = 50
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 300.0
    early_stopping_patience: Optional[int] = None
    progress: str = "auto"
    num_threads: Optional[int] = None
    # what a completed run keeps: best (best.pt and the final record, no optimizer state) | all
    keep_checkpoints: str = "best"
    # best.pt's embedding table: fp16 (for inference: predictions, clf explain, clf.api) | fp32
    best_precision: str = "fp16"


@dataclass
class ClusterConfig:
    """Where ``clf submit`` runs jobs (a profile in ``conf/cluster/``); ``local`` needs no Slurm.

    Every string here reaches ``sbatch`` and is checked against a conservative pattern first
    (``clf.slurm.profile``).
    """

    name: str = "local"
    executor: str = "local"                 # local (submitit's local executor) | slurm
    partition: Optional[str] = None
    account: Optional[str] = None
    account_required: bool = False          # true: refuse to submit without an account
    qos: Optional[str] = None
    gpus_per_node: int = 0
    gres: Optional[str] = None              # e.g. gpu:nvidia_a100_80gb_pcie_3g.40gb:1 (replaces gpus_per_node)
    cpus_per_task: int = 2                  # also torch's threads when train.num_threads is null
    mem_gb: float = 8.0
    timeout_min: int = 60
    nodes: int = 1
    tasks_per_node: int = 1                 # > 1: data-parallel training, one process per task
    array_parallelism: int = 2              # array tasks of a sweep running at the same time
    runs_per_task: int = 1                  # > 1: each array task trains this many runs in turn (clf.slurm.pack)
    workers: int = 0                        # > 0: this many worker jobs drain the sweep's queue (clf.slurm.worker)
    runs_per_worker: int = 1                # runs a worker trains at once, each in a process of its own
    worker_seconds_per_step: float = 0.05   # a run's wall seconds per step before a worker has measured its own
    worker_heartbeat_s: int = 15            # a worker touches its claims this often
    worker_dead_after_s: int = 600          # a claim this long without a heartbeat is dead, whatever Slurm says
    max_crashes: int = 5                    # a worker's run whose process died this many times is failed
    signal_delay_s: int = 120               # USR2 this long before the time limit: checkpoint, requeue
    max_num_timeout: int = 3                # requeues after time limits ...
    max_num_preempt: int = 3                # ... and after preemptions, per job
    requeue_window_s: int = 60              # a failed `scontrol requeue` (busy controller) is retried this long
    setup: list[str] = field(default_factory=list)   # shell lines run before the job (module load ...)
    additional_parameters: dict[str, Any] = field(default_factory=dict)   # more #SBATCH flags


@dataclass
class SearchConfig:
    """How ``clf submit`` searches the grid it expands (``conf/search/``): ``grid`` trains every
    run to the full budget; ``halving`` is successive halving (``clf.slurm.halving``)."""

    kind: str = "grid"
    eta: int = 3                            # halving: keep the best 1/eta of each rung; budgets grow eta-fold
    min_steps: Optional[int] = None         # halving: the first rung's budget (a multiple of train.eval_every)


@dataclass
class Config:
    """Everything one training run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    run_dir: Optional[str] = None
    sweep_dir: Optional[str] = None
    name: str = "clf"
