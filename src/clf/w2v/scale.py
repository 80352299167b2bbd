"""word2vec's ``epochs`` and ``min_count`` scaled to the size of its corpus (``epochs=null``,
``min_count=null``).

The fixed 5 epochs and min_count 5 suit IMDB's ~19M tokens; on a few hundred thousand tokens
(tweets, 1,000 reviews) they give few, weak vectors (issue 12). Scaled: about ``TOKEN_PASSES``
token visits (so IMDB keeps 5 epochs, a 300k-token corpus gets ``MAX_EPOCHS``), and a lower
min_count below a million tokens. The default of ``clf w2v`` since issue 12's second round. Measured in bench/RESULTS.md ("Quality across datasets").
"""

from __future__ import annotations

import copy
import logging
import math

from omegaconf import DictConfig

from clf.data.sources import SplitSource
from clf.w2v.corpus import load_corpus

log = logging.getLogger("clf.w2v")

TOKEN_PASSES = 15_000_000
MIN_EPOCHS, MAX_EPOCHS = 5, 30
MIN_COUNTS = ((1_000_000, 2), (5_000_000, 3))    # (below this many tokens, min_count); else DEFAULT_MIN_COUNT
DEFAULT_MIN_COUNT = 5


def scaled_epochs(tokens: int) -> int:
    """Epochs for a corpus of ``tokens`` tokens: ~TOKEN_PASSES visits, within [MIN_EPOCHS, MAX_EPOCHS]."""
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TOKEN_PASSES / max(tokens, 1))))


def scaled_min_count(tokens: int) -> int:
    """min_count for a corpus of ``tokens`` tokens: lower on small corpora, where rare words are most of them."""
    return next((count for limit, count in MIN_COUNTS if tokens < limit), DEFAULT_MIN_COUNT)


def with_scaled_settings(cfg: DictConfig, sources: list[SplitSource]) -> DictConfig:
    """``cfg``, or a copy whose null ``epochs`` / ``min_count`` are scaled to the token count of ``sources``."""
    if cfg.epochs is not None and cfg.min_count is not None:
        return cfg
    every_token = copy.deepcopy(cfg)
    every_token.min_count = 1
    tokens = load_corpus(every_token, sources).n_tokens
    scaled = copy.deepcopy(cfg)
    if cfg.epochs is None:
        scaled.epochs = scaled_epochs(tokens)
    if cfg.min_count is None:
        scaled.min_count = scaled_min_count(tokens)
    log.info("corpus of %d tokens: epochs=%d, min_count=%d (scaled)", tokens, scaled.epochs, scaled.min_count)
    return scaled
