"""The course's DocumentAttentionClassifier, batched, with its head matrix trained.

Each of H heads is a D-dim vector; a head scores every token by a dot product, a softmax over
the document's tokens turns scores into attention, and the attention-weighted average of the
token vectors is that head's summary. The H summaries, concatenated, go through optional
hidden layers to one logit. Padding positions are masked out, so a document gets the same
probability and attention alone or in a padded batch.

How it is computed (same numbers as the textbook order, far less memory traffic):

* A batch's distinct word ids are found once; per-word quantities are computed for those U
  rows and gathered per token, instead of per token.
* Token scores are ``(rows @ heads)[word]``: [U, H] work, not [tokens, D]. Per-token
  tensors are laid out [H, B, T] so the softmax runs over the contiguous last axis.
* With no hidden layer the logit is linear in the summaries, so
  ``w . concat_h(sum_t a_th E_t) = sum_t sum_h a_th (w_h . E_t)``: the per-word values
  ``rows @ w_h`` are gathered and weighted by attention, and no [B, T, D] tensor is built.
* With embeddings trained lazily, the gradient of the embedding matrix is a sparse tensor
  naming just the batch's rows (already coalesced), for ``LazyAdamW``.
* Scored many times without a gradient (dev), documents can come as bags of word counts
  (``bag_logits``): with no positions and no hidden layer a head's softmax-weighted average is
  a ratio of two sums over the document's distinct words, each term times the word's count.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# a batch's sorted distinct ids and each token's index into them (``distinct_ids``)
Distinct = tuple[torch.Tensor, torch.Tensor]

# A bag's softmax normaliser below this is not trusted (``bag_logits``): terms of its sums may be
# float32 subnormals, whose absolute rounding (1.4e-45) divided by it would reach the result.
SMALLEST_BAG_NORMALISER = 2.0 ** -100


class WordBags(NamedTuple):
    """Documents as bags of word counts: document ``i`` holds word ``rows[words[j]]``
    ``counts[j]`` times for ``j`` in ``offsets[i] <= j < offsets[i + 1]`` (the last one: to the end)."""

    docs: torch.Tensor      # [N] the documents' indices in their split
    rows: torch.Tensor      # [U] the distinct word ids of all N documents, sorted
    words: torch.Tensor     # [P] each (document, word) pair's index into rows, grouped by document
    offsets: torch.Tensor   # [N] where each document's pairs start
    counts: torch.Tensor    # [P] float32: how often the pair's word occurs in the document


class _GatherRows(torch.autograd.Function):
    """``weight[rows]`` for distinct sorted ``rows``; the gradient is a coalesced sparse tensor."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(rows)
        ctx.weight_shape = weight.shape
        return weight.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (rows,) = ctx.saved_tensors
        sparse = torch.sparse_coo_tensor(rows.unsqueeze(0), grad.contiguous(), ctx.weight_shape,
                                         is_coalesced=True, check_invariants=False)
        return sparse, None


class _GatherColumns(torch.autograd.Function):
    """``table[:, index]`` for a [K, U] table and [B, T] index -> [K, B, T].

    Gathering columns of a [K, U] table (and, backward, ``index_add_`` into its columns) is
    several times faster on CPU than gathering [U, K] rows, and leaves the token axis last,
    where the softmax is fastest.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.width = table.shape[1]
        return table.index_select(1, index.flatten()).view(table.shape[0], *index.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (index,) = ctx.saved_tensors
        out = torch.zeros(grad.shape[0], ctx.width, dtype=grad.dtype, device=grad.device)
        return out.index_add_(1, index.flatten(), grad.reshape(grad.shape[0], -1)), None


def distinct_ids(ids: torch.Tensor, table_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct ids of a batch and each token's index into them.

    Large batches mark a table-sized mask (no sort); small ones sort their few ids.
    """
    flat = ids.flatten()
    if flat.numel() * 16 < table_size:
        rows, local = torch.unique(flat, sorted=True, return_inverse=True)
        return rows, local.view(ids.shape)
    present = torch.zeros(table_size, dtype=torch.bool, device=ids.device).index_fill_(0, flat, True)
    rows = present.nonzero().squeeze(1)
    position = torch.zeros(table_size, dtype=torch.long, device=ids.device)
    position.index_copy_(0, rows, torch.arange(len(rows), device=ids.device))
    return rows, position.index_select(0, flat).view(ids.shape)


class DocumentAttentionClassifier(nn.Module):
    def __init__(self, vocab_size: int, dim: int, num_heads: int = 4, *, head_init: float = 0.5,
                 hidden_layers: int = 0, hidden_size: int = 128, dropout: float = 0.1,
                 positional: bool = False, max_len: int = 512, sparse: bool = False,
                 vectors: torch.Tensor | None = None, freeze: bool = False) -> None:
        super().__init__()
        self.vocab_size, self.dim, self.num_heads, self.max_len = vocab_size, dim, num_heads, max_len
        self.sparse = sparse
        # one extra row (id vocab_size) for padding: zero, masked out, never changed
        self.embeddings = nn.Embedding(vocab_size + 1, dim, padding_idx=vocab_size)
        if vectors is not None:
            with torch.no_grad():
                self.embeddings.weight[:vocab_size].copy_(vectors)
        self.embeddings.weight.requires_grad_(not freeze)
        self.heads = nn.Parameter(torch.empty(dim, num_heads).uniform_(-head_init, head_init))
        self.positions = nn.Embedding(max_len, dim) if positional else None
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=0.02)
        layers: list[nn.Module] = []
        width = num_heads * dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(width, 1)

    @property
    def pad_id(self) -> int:
        return self.vocab_size

    def _rows(self, ids: torch.Tensor, distinct: Distinct | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The embedding rows a batch needs (None: the whole table) and each token's index into them.

        Training: the batch's distinct rows. Without any gradient (evaluation) and with many
        tokens, the whole table: per-word values for every word cost less than finding the
        distinct ids, unless they were found earlier (``distinct``, for a batch scored many times).
        """
        if distinct is not None:
            return distinct
        if self.takes_whole_table(ids):
            return None, ids
        return distinct_ids(ids, self.embeddings.weight.shape[0])

    def _vectors(self, rows: torch.Tensor | None) -> torch.Tensor:
        """The rows' embedding vectors: a sparse gradient in lazy mode when the embeddings learn.
        (Frozen embeddings still take the distinct rows while training: the heads' gradient then
        spans U rows, not V.)"""
        weight = self.embeddings.weight
        if rows is None:
            return weight
        if self.sparse and weight.requires_grad and torch.is_grad_enabled():
            return _GatherRows.apply(weight, rows)
        return weight.index_select(0, rows)

    def takes_whole_table(self, ids: torch.Tensor) -> bool:
        """Whether a batch (its distinct ids not given) reads its words' values from the whole table."""
        return not torch.is_grad_enabled() and ids.numel() * 4 >= self.embeddings.weight.shape[0]

    @property
    def scores_word_bags(self) -> bool:
        """Whether a document's logit depends on its word counts alone (no positions, no hidden
        layer), so that ``bag_logits`` can score it."""
        return self.positions is None and len(self.hidden) == 0

    def bag_logits(self, bags: WordBags) -> torch.Tensor:
        """Logits [N] of documents given as word counts; NaN for a document to score token by token.

        Per head, ``sum_t exp(s_t) v_t / sum_t exp(s_t)`` over a document's tokens (``v``: the
        word's part of the logit, as in ``forward``) equals the same sums over its distinct words,
        each term times the word's count: one ``embedding_bag`` over [U, 2H] per-word terms, no
        per-token tensor (IMDB dev on CPU: 6x less time than ``forward``). Each head's largest score
        among the U words is subtracted, where the softmax subtracts each document's: a document
        whose words all score ~70 below it gets a normaliser under ``SMALLEST_BAG_NORMALISER``,
        and NaN. A document without words gets the bias, as in ``forward``.
        """
        if not self.scores_word_bags:
            raise ValueError("bag_logits needs a model without positions and hidden layers")
        bias = self.output.bias
        if bags.rows.numel() == 0:
            return bias.expand(len(bags.offsets)).clone()
        h = self.num_heads
        vectors = self.embeddings.weight.index_select(0, bags.rows)                # [U, D]
        values = vectors @ self._projection(vectors.dtype).T                       # [U, 2H]
        scores = values[:, :h]
        weights = torch.exp(scores - scores.amax(dim=0))                           # [U, H]
        terms = torch.cat([weights * values[:, h:], weights], dim=1)              # [U, 2H]
        sums = F.embedding_bag(bags.words, terms, bags.offsets, mode="sum",
                               per_sample_weights=bags.counts.to(terms.dtype))     # [N, 2H]
        numerators, normalisers = sums[:, :h], sums[:, h:]
        logits = (numerators / normalisers.clamp(min=SMALLEST_BAG_NORMALISER)).sum(dim=1) + bias
        has_words = torch.diff(bags.offsets, append=bags.offsets.new_tensor([len(bags.words)])) > 0
        untrusted = has_words & (normalisers < SMALLEST_BAG_NORMALISER).any(dim=1)
        return logits.masked_fill(untrusted, float("nan"))

    def _position_vectors(self, length: int, device: torch.device) -> torch.Tensor | None:
        if self.positions is None:
            return None
        return self.positions(torch.arange(length, device=device).clamp_(max=self.max_len - 1))

    def _projection(self, dtype: torch.dtype) -> torch.Tensor:
        """[K, D]: per head its score vector; without hidden layers also each head's output weights
        (a word's value for them is its part of the logit)."""
        project = self.heads
        if len(self.hidden) == 0:
            project = torch.cat([project, self.output.weight.view(self.num_heads, self.dim).T], dim=1)   # [D, 2H]
        return project.to(dtype).T

    def table_values(self) -> torch.Tensor:
        """[K, V + 1]: every word's values (``_projection``), for batches scored without a gradient.
        ``predict`` computes them once per split and hands them to every batch that reads them
        (one that takes the whole table, or whose distinct ids were found earlier): one product,
        not one per batch. Padding's scores are the masked value already, so such a batch skips
        the mask pass."""
        weight = self.embeddings.weight
        values = self._projection(weight.dtype) @ weight.T
        values[:self.num_heads, self.pad_id] = torch.finfo(values.dtype).min
        return values

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, table_values: torch.Tensor | None = None,
                distinct: Distinct | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids, mask: [B, T] -> logits [B] and attention [B, T, H] (zero on padding).

        ``table_values``: ``self.table_values()`` of the current weights (no gradient): the words'
        values are read from it. ``distinct``: ``distinct_ids(ids, V + 1)`` found earlier.
        """
        rows, local = self._rows(ids, distinct)                                # rows None: the whole table
        positions = self._position_vectors(ids.shape[1], ids.device)           # [T, D] or None
        h = self.num_heads
        factored = len(self.hidden) == 0
        words = self._vectors(rows) if table_values is None or not factored else None   # [U, D]
        # per word: [score per head | output weight of head . vector], gathered in one go
        project = self._projection(self.embeddings.weight.dtype)               # [K, D]
        if table_values is None:
            values = project @ words.T
        else:
            values = table_values if rows is None else table_values.index_select(1, rows)
        per_token = _GatherColumns.apply(values, local)                        # [K, B, T]
        if positions is not None:
            per_token = per_token + (project @ positions.T).unsqueeze(1)
        if table_values is not None and positions is None:
            scores = per_token[:h]  # padding gathered its masked score from the table
        else:
            scores = torch.where(mask, per_token[:h], torch.finfo(per_token.dtype).min)
        attention = torch.softmax(scores, dim=-1)                              # [H, B, T]
        if not bool(mask[:, :1].all()):
            attention = attention * mask  # a zero-token document: all zeros, no NaN
        if factored:
            logits = (attention * per_token[h:]).sum(dim=(0, 2)) + self.output.bias
        else:
            vectors = words.index_select(0, local.flatten()).view(*local.shape, self.dim)   # [B, T, D]
            if positions is not None:
                vectors = vectors + positions
            summaries = torch.bmm(attention.transpose(0, 1), vectors)          # [B, H, D]
            logits = self.output(self.hidden(summaries.flatten(1))).squeeze(-1)
        return logits, attention.permute(1, 2, 0)


def build_model(cfg, vocab_size: int, vectors: torch.Tensor | None) -> DocumentAttentionClassifier:
    """The model a config describes; ``vectors`` are pre-trained [V, D] rows or None."""
    m, e = cfg.model, cfg.embeddings
    return DocumentAttentionClassifier(
        vocab_size, vectors.shape[1] if vectors is not None else e.dim, m.num_heads,
        head_init=m.head_init, hidden_layers=m.hidden_layers, hidden_size=m.hidden_size, dropout=m.dropout,
        positional=m.positional, max_len=m.max_len, vectors=vectors, freeze=e.freeze,
        sparse=cfg.optim.embedding_update == "lazy")
