"""A trained run from Python (a notebook): load it, predict, look at its attention.

    >>> from clf.api import load_run
    >>> run = load_run("runs/2024-05-01/12-00-00")        # best-dev checkpoint, on the CPU
    >>> run.predict(["a great movie", "dull and long"])    # P(label = 1) per text
    array([0.97, 0.08], dtype=float32)
    >>> tokens, weights, prob = run.attention("a great movie")
    >>> weights.shape                                       # [tokens, heads]; each column sums to 1
    (3, 4)

The run directory gives everything: ``config.yaml`` (tokenizer, model shape), the homework's
vocabulary files, and ``checkpoints/best.pt`` (read with ``weights_only=True``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from clf.config.compose import from_yaml
from clf.data.batching import collate, eval_plan
from clf.data.cache import TokenizedSplit
from clf.data.dataset import encode_texts, load_dataset
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import Vocab
from clf.errors import ClfError
from clf.names import CHECKPOINTS, CONFIG, METRICS
from clf.train.evaluate import predict as predict_split
from clf.model import DocumentAttentionClassifier, build_model
from clf.train import checkpoint as ckpt
from clf.device import select_device

CHECKPOINT_NAMES = ("best", "last", "previous")


class Attention(NamedTuple):
    """One text's tokens (as the model sees them), attention [T, H] and P(label = 1)."""

    tokens: list[str]
    weights: np.ndarray
    probability: float


@dataclass
class AttentionBatch:
    """Model outputs for documents ``docs`` of a split (rows padded to the longest)."""

    docs: np.ndarray            # [B] indices into the split
    ids: np.ndarray             # [B, T] token ids (the vocabulary's pad id on padding)
    mask: np.ndarray            # [B, T] True on real tokens
    probabilities: np.ndarray   # [B] P(label = 1)
    attention: np.ndarray       # [B, T, H], zero on padding


@dataclass
class Run:
    """A trained run, ready to use: model in eval mode, its tokenizer and vocabulary."""

    path: Path
    config: DictConfig = field(repr=False)
    model: DocumentAttentionClassifier = field(repr=False)
    vocab: Vocab = field(repr=False)
    tokenizer: Tokenizer = field(repr=False)
    device: torch.device
    step: int | None = None
    dev_f1: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_heads(self) -> int:
        return self.model.num_heads

    @property
    def max_tokens(self) -> int | None:
        return self.config.model.max_tokens

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` the model reads: its words, then its bigrams in the vocabulary
        (``data.tokenizer.ngrams=2``), truncated to ``model.max_tokens``."""
        words = self.tokenizer(text)
        bigram_ids = np.asarray(self.encode([text]).ids[len(words):])
        return (words + self.words(bigram_ids))[: self.max_tokens]

    def encode(self, texts: Sequence[str]) -> TokenizedSplit:
        """Texts as a split of token ids (no labels; inst_ids 0..n-1)."""
        return encode_texts(list(texts), self.tokenizer, self.vocab)

    def predict(self, texts: str | Sequence[str]) -> np.ndarray:
        """P(label = 1) of each text (float32 array; one element for a single string)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return predict_split(self.model, self.encode(texts), batch_tokens=self.config.train.eval_batch_tokens,
                             max_tokens=self.max_tokens, device=self.device)

    def attention(self, text: str) -> Attention:
        """Tokens, attention weights [T, H] and probability of one text."""
        tokens = self.tokenize(text)
        ids = np.asarray(self.encode([text]).ids[: len(tokens)], dtype=np.int32)
        split = TokenizedSplit("text", ids, np.array([0, len(ids)], dtype=np.int64), None, np.zeros(1))
        batch = self.forward(split, np.array([0]))
        return Attention(tokens, batch.attention[0, : len(tokens)], float(batch.probabilities[0]))

    @torch.inference_mode()
    def forward(self, split: TokenizedSplit, docs: np.ndarray) -> AttentionBatch:
        """Probabilities and attention of documents ``docs`` of ``split``, in one batch."""
        ids, mask = collate(split, docs, self.model.pad_id, self.max_tokens)
        logits, attention = self.model(ids.to(self.device), mask.to(self.device))
        return AttentionBatch(docs, ids.numpy(), mask.numpy(), torch.sigmoid(logits.float()).cpu().numpy(),
                              attention.float().cpu().numpy())

    def batches(self, split: TokenizedSplit, batch_tokens: int | None = None) -> Iterator[AttentionBatch]:
        """``forward`` over a whole split, in length-sorted batches of at most ``batch_tokens`` tokens."""
        lengths = split.lengths if self.max_tokens is None else np.minimum(split.lengths, self.max_tokens)
        for docs in eval_plan(lengths, batch_tokens or self.config.train.eval_batch_tokens):
            yield self.forward(split, docs)

    def split(self, name: str) -> TokenizedSplit:
        """A split of the run's data (``train``, ``dev``, ``test``), encoded with the run's vocabulary."""
        dataset = load_dataset(self.config.data, self.vocab, splits=(name,))
        if name not in dataset.splits:
            raise ClfError(f"the run's data ({self.config.data.source}) has no {name!r} split")
        return dataset[name]

    def words(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Vocabulary words of token ids (the padding id reads as ``<PAD>``)."""
        return [self.vocab.words[i] if i < self.vocab.size else "<PAD>" for i in np.asarray(ids).tolist()]


def _checkpoint_path(run_dir: Path, checkpoint: str | Path) -> Path:
    if str(checkpoint) in CHECKPOINT_NAMES:
        return run_dir / CHECKPOINTS / f"{checkpoint}.pt"
    return Path(checkpoint)


def _model_for(cfg: DictConfig, vocab: Vocab, state: dict[str, Any]) -> DocumentAttentionClassifier:
    """The run's model with the checkpoint's weights; the embedding size comes from the weights."""
    table = state.get("embeddings.weight")
    if not isinstance(table, torch.Tensor) or table.dim() != 2:
        raise ClfError("the checkpoint has no embeddings.weight matrix")
    if table.shape[0] != vocab.size + 1:
        raise ClfError(f"the checkpoint's embedding table has {table.shape[0]} rows; the run's vocabulary "
                       f"({vocab.size} words) needs {vocab.size + 1}")
    cfg = copy.deepcopy(cfg)
    cfg.embeddings.dim = int(table.shape[1])  # a word2vec run takes its size from the vectors
    model = build_model(cfg, vocab.size, None)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ClfError(f"the checkpoint does not fit the run's config: {' '.join(str(exc).split())[:300]}") from None
    return model.eval()


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def load_run(run_dir: str | Path, checkpoint: str | Path = "best", device: str = "cpu") -> Run:
    """Load a run written by ``clf train``.

    ``checkpoint``: ``best`` (the best dev F1), ``last``, ``previous``, or a path to a ``.pt``
    file. ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    """
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise ClfError("no such run directory", path)
    config_file = path / CONFIG
    if not config_file.is_file():
        raise ClfError("not a run directory (no config.yaml)", path)
    cfg = from_yaml(config_file.read_text(encoding="utf-8"))
    vocab = Vocab.load(path)
    try:
        saved = ckpt.read(_checkpoint_path(path, checkpoint))
    except ckpt.CheckpointError as exc:
        raise ClfError(f"cannot load the model: {exc}") from None
    if not isinstance(saved.get("model"), dict):
        raise ClfError("the checkpoint holds no model weights", _checkpoint_path(path, checkpoint))
    target = select_device(device)
    model = _model_for(cfg, vocab, saved["model"]).to(target)
    dev_f1 = saved.get("dev_f1")
    return Run(path=path, config=cfg, model=model, vocab=vocab, tokenizer=Tokenizer.from_config(cfg.data.tokenizer),
               device=target, step=saved.get("step") if isinstance(saved.get("step"), int) else None,
               dev_f1=float(dev_f1) if isinstance(dev_f1, (int, float)) else None, metrics=_read_metrics(path))
