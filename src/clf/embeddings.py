"""The homework's word2vec artifacts: ``word2vec.pt`` plus the two index files.

``word2vec.pt`` is a state dict with ``target_embeddings.weight`` and
``context_embeddings.weight``, each [V, D]; the classifier starts from the target vectors.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clf.atomic import atomic_torch_save
from clf.data.vocab import UNK, Vocab
from clf.errors import ClfError

WORD2VEC = "word2vec.pt"
TARGET = "target_embeddings.weight"
CONTEXT = "context_embeddings.weight"


def load_state_dict_file(path: Path) -> dict:
    """``torch.load(weights_only=True)`` with one-line errors for missing or unreadable files."""
    if not path.is_file():
        raise ClfError("no such file", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle of arbitrary objects, not a torch file
        raise ClfError(f"cannot be read as a torch state dict ({' '.join(str(exc).split())[:200]})", path) from None
    if not isinstance(obj, dict):
        raise ClfError(f"holds a {type(obj).__name__}, not a state dict", path)
    return obj


def load_word2vec(directory: str | Path) -> tuple[Vocab, torch.Tensor]:
    """Vocabulary and target vectors [V, D] (float32) of a homework word2vec directory."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ClfError("embeddings.dir is not a directory", directory)
    vocab = Vocab.load(directory)
    path = directory / WORD2VEC
    state = load_state_dict_file(path)
    if TARGET not in state:
        raise ClfError(f"has no {TARGET!r} (keys: {', '.join(map(str, state)) or 'none'})", path)
    for key in (TARGET, CONTEXT):
        tensor = state.get(key)
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or not tensor.is_floating_point():
            raise ClfError(f"{key} is not a 2-D float tensor", path)
        if tensor.shape[0] != vocab.size:
            raise ClfError(f"{key} has {tensor.shape[0]} rows but the vocabulary (word_to_index.txt) has "
                           f"{vocab.size} words", path)
    vectors = state[TARGET].float()
    if not torch.isfinite(vectors).all():
        raise ClfError(f"{TARGET} holds NaN or infinite values", path)
    return vocab, vectors


def capitalised_words(vocab: Vocab) -> int:
    """How many of the vocabulary's words hold a capital letter: lowercased tokens never reach
    them, so vectors trained on case-kept text (the homework's) lose those rows' meaning."""
    return sum(1 for word in vocab.words if word != UNK and word != word.lower())


def save_word2vec(directory: str | Path, vocab: Vocab, target: torch.Tensor, context: torch.Tensor) -> None:
    """Write ``word2vec.pt`` and the index files in the homework's format (each atomically)."""
    directory = Path(directory)
    vocab.save(directory)
    atomic_torch_save(directory / WORD2VEC, {TARGET: target.float().contiguous(), CONTEXT: context.float().contiguous()})
