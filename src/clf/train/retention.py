"""What a completed run keeps on disk (``train.keep_checkpoints``).

``best`` (the default): ``best.pt`` (the weights ``clf explain``, ``clf.api`` and the predictions
come from) and ``last.pt`` reduced to the final training record (step, state, config and
vocabulary fingerprint: what tells a rerun, a resubmit or a ``--code current`` resubmit that the
run is finished and was trained with this config), without the model, optimizer and scheduler
states; ``previous.pt`` is removed. A default IMDB run then keeps about a tenth of its
checkpoints' bytes (bench/RESULTS.md). ``all``: every checkpoint as training left it (to train
further from ``last.pt`` with more steps, or to compare optimizer states).
"""

from __future__ import annotations

import logging
from pathlib import Path

from clf.atomic import atomic_torch_save, remove_temp_files
from clf.names import CONFIG, METRICS, TENSORBOARD
from clf.train import checkpoint

log = logging.getLogger(__name__)

KEEP_CHOICES = ("best", "all")
RECORD_KEYS = ("format", "state", "config_yaml", "vocab_fingerprint")
# files a trainer writes atomically in its run directory (others, e.g. status.json, belong to the job)
TRAINER_FILES = (METRICS, CONFIG, "word_to_index.txt", "index_to_word.txt")


def final_record(ckpt: dict) -> dict:
    """The part of a finished run's checkpoint that ``keep_checkpoints=best`` keeps."""
    return {k: ckpt[k] for k in RECORD_KEYS if k in ckpt}


def is_record_only(ckpt: dict) -> bool:
    """A ``last.pt`` reduced by ``keep_checkpoints=best``: no model to resume from."""
    return "model" not in ckpt


def apply_retention(ckpt_dir: Path, keep: str) -> None:
    """Drop what a completed run does not need under ``keep`` (idempotent)."""
    if keep == "all":
        return
    last = ckpt_dir / checkpoint.LAST
    try:
        ckpt = checkpoint.read(last)
    except checkpoint.CheckpointError as exc:
        log.warning("keep_checkpoints=%s: %s; left as it is", keep, exc)
        return
    if not is_record_only(ckpt):
        before = last.stat().st_size
        atomic_torch_save(last, final_record(ckpt))
        log.info("keep_checkpoints=%s: %s reduced to the final record (%.1f MB -> %.3f MB)", keep, last, before / 1e6,
                 last.stat().st_size / 1e6)
    (ckpt_dir / checkpoint.PREVIOUS).unlink(missing_ok=True)


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Temp files that killed atomic writes of the trainer left in ``run_dir`` (call under the
    run's lock, so that no live writer owns them)."""
    return [*remove_temp_files(run_dir, TRAINER_FILES), *remove_temp_files(run_dir / "checkpoints"),
            *remove_temp_files(run_dir / "predictions"), *remove_temp_files(run_dir / TENSORBOARD)]
