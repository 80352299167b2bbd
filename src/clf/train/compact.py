"""What ``best.pt`` holds for inference (``train.best_precision``).

``best.pt`` is read by the run's own predictions, ``clf explain`` and ``clf.api``; none of them
trains, so ``fp16`` (the default) keeps the embedding table, nearly all of a model's bytes (IMDB
with bigrams: 96% of them), in half precision, and every other tensor as trained. Loading casts
the table back to the model's float32 (``load_state_dict`` copies into the parameter), so a model
loaded from it computes in float32 on weights rounded to half precision: each element within
2**-11 of its value relative, and probabilities within ``PROBABILITY_BOUND`` of the
full-precision model's (``tests/test_compact_best.py``; IMDB: ``bench/defaults_bench.py``). A
resumed run never reads ``best.pt``: ``last.pt`` keeps full precision while a run is unfinished.
"""

from __future__ import annotations

import torch

EMBEDDINGS = "embeddings.weight"
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}
# largest |P(label=1) difference| between a model and the same model loaded from an fp16 best.pt
PROBABILITY_BOUND = 5e-3


def inference_weights(state: dict[str, torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    """A detached copy of a model's state dict for ``best.pt``: the embedding table in
    ``precision`` (kept in float32 if half precision would overflow it), the rest as it is."""
    out = {k: v.detach().clone() for k, v in state.items() if k != EMBEDDINGS}
    table = state[EMBEDDINGS].detach()
    compact = table.to(PRECISIONS[precision], copy=True)
    out[EMBEDDINGS] = compact if bool(torch.isfinite(compact).all()) else table.clone()
    return out
