"""Checks the schema's types cannot express: allowed choices, ranges, required paths."""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

from clf.errors import ClfError

CHOICES = {
    "data.source": ("demo", "csv", "imdb"),
    "embeddings.kind": ("random", "word2vec"),
    "optim.embedding_update": ("lazy", "dense"),
    "optim.schedule": ("none", "linear", "cosine", "plateau"),
    "precision": ("fp32", "bf16"),
    "train.progress": ("auto", "bar", "log", "none"),
    "train.keep_checkpoints": ("best", "all"),
    "train.best_precision": ("fp16", "fp32"),
    "search.kind": ("grid", "halving"),
}
POSITIVE = (
    "embeddings.dim", "model.num_heads", "model.hidden_size", "model.max_len", "model.max_tokens",
    "train.batch_size", "train.bucket_batches", "train.eval_batch_tokens", "train.log_every",
    "train.eval_every", "train.checkpoint_every", "train.max_steps", "train.early_stopping_patience",
    "train.num_threads", "train.min_epochs", "train.min_steps_tokens", "data.min_count", "data.max_size", "data.train_limit", "train.stop_at_step",
    "data.bigram_min_count", "data.bigram_max_size",
)
NON_NEGATIVE = (
    "model.hidden_layers", "train.epochs", "train.min_steps", "optim.weight_decay", "optim.warmup_steps",
    "train.checkpoint_seconds", "optim.plateau_patience",
)


def _get(cfg: DictConfig, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def validate(cfg: DictConfig) -> None:
    """Raise ClfError naming the first offending key."""
    for key, allowed in CHOICES.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ClfError(f"{key}={value!r} is not one of {', '.join(allowed)}")
    for key in POSITIVE:
        value = _get(cfg, key)
        if value is not None and value <= 0:
            raise ClfError(f"{key}={value} must be positive")
    for key in NON_NEGATIVE:
        value = _get(cfg, key)
        if value is not None and value < 0:
            raise ClfError(f"{key}={value} must not be negative")
    if not 0 < cfg.optim.lr:
        raise ClfError(f"optim.lr={cfg.optim.lr} must be positive")
    if not 0 <= cfg.model.dropout < 1:
        raise ClfError(f"model.dropout={cfg.model.dropout} must be in [0, 1)")
    for key in ("optim.beta1", "optim.beta2"):
        if not 0 <= _get(cfg, key) < 1:
            raise ClfError(f"{key}={_get(cfg, key)} must be in [0, 1)")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device):
        raise ClfError(f"device={cfg.device!r} is not one of auto, cpu, cuda, cuda:N")
    if cfg.train.epochs == 0 and cfg.train.max_steps is None:
        raise ClfError("train.epochs=0 needs train.max_steps")
    for frac in ("data.dev_fraction", "data.test_fraction"):
        if not 0 < _get(cfg, frac) < 1:
            raise ClfError(f"{frac}={_get(cfg, frac)} must be in (0, 1)")
    _check_budgets(cfg)
    _check_ngrams(cfg.data.tokenizer)
    source = cfg.data.source
    if source == "csv":
        for split in ("train", "dev"):
            if not cfg.data[split]:
                raise ClfError(f"data=csv needs data.{split}=PATH")
    if source == "imdb" and not cfg.data.dir:
        raise ClfError("data=imdb needs data.dir=DIR (the layout of shared/data/imdb)")
    if cfg.embeddings.kind == "word2vec" and not cfg.embeddings.dir:
        raise ClfError("embeddings=word2vec needs embeddings.dir=DIR (word2vec.pt and the two index files)")


def _check_budgets(cfg: DictConfig) -> None:
    """A stop step (a halving rung's budget) falls on an evaluation, so that the promoted run does
    exactly what an uninterrupted one does there; halving's own settings."""
    train, every = cfg.train, cfg.train.eval_every
    if train.stop_at_step is not None and train.stop_at_step % every:
        raise ClfError(f"train.stop_at_step={train.stop_at_step} must be a multiple of train.eval_every={every} "
                       "(a run pauses at an evaluation)")
    search = cfg.search
    if search.kind != "halving":
        return
    if OmegaConf.is_missing(search, "min_steps") or search.min_steps is None:
        raise ClfError("search=halving needs search.min_steps=N (the first rung's budget in optimizer steps)")
    if search.eta < 2:
        raise ClfError(f"search.eta={search.eta} must be at least 2")
    if train.max_steps is None:
        raise ClfError("search=halving needs train.max_steps=N (the full budget of the last rung)")
    if search.min_steps <= 0 or search.min_steps % every:
        raise ClfError(f"search.min_steps={search.min_steps} must be a positive multiple of "
                       f"train.eval_every={every} (rungs end at evaluations)")
    if search.min_steps >= train.max_steps:
        raise ClfError(f"search.min_steps={search.min_steps} must be less than train.max_steps={train.max_steps}")


def _check_ngrams(tokenizer: DictConfig) -> None:
    if tokenizer.ngrams not in (1, 2):
        raise ClfError(f"data.tokenizer.ngrams={tokenizer.ngrams} must be 1 (words) or 2 (words and bigrams)")
    if tokenizer.ngrams == 2 and any(" " in token for token in re.findall(tokenizer.pattern, "a b")):
        raise ClfError(f"data.tokenizer.ngrams=2 joins a bigram's words with a space, and data.tokenizer.pattern="
                       f"{tokenizer.pattern!r} matches spaces")
