"""Find the run directories under sweep directories and read their state and results.

A run directory is one that holds ``metrics.json`` or ``status.json`` (a Slurm job's state), or
``config.yaml`` with no sub-directories but a run's own (``tb``, ``checkpoints``,
``predictions``). A directory with a ``sweep.json`` manifest is a sweep, never a run. Only
JSON and YAML are read (no pickles), and a missing, half-written or corrupt file never raises:
the run is returned with a state that says what is wrong.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from clf.errors import ClfError
from clf.names import COMPLETED, CONFIG, METRICS, RUN_SUBDIRS, STOPPED  # noqa: F401 (COMPLETED: re-exported)
from clf.names import JOB_STATUS as STATUS
from clf.names import SWEEP_MANIFEST as SWEEP

log = logging.getLogger(__name__)
CORRUPT, STARTED = "corrupt", "started"
# metrics.json keys copied into a run's row (the rest of the file is the config)
METRIC_KEYS = ("dev_f1", "dev_precision", "dev_recall", "dev_accuracy", "test_f1", "test_precision",
               "test_recall", "test_accuracy", "best_step", "steps", "total_steps", "epochs", "train_seconds",
               "train_documents", "budget")
BUDGET = "budget"   # the steps a run trained to: its last rung's budget when successive halving stopped it
TRAIN_LIMIT = "data.train_limit"


@dataclass
class RunRecord:
    """One run directory: its state, metrics (numbers or None) and flat ``group.key`` config."""

    path: Path
    name: str
    state: str
    detail: str = ""
    metrics: dict[str, float | None] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.state == COMPLETED


def _is_run_dir(files: set[str], dirs: list[str]) -> bool:
    if SWEEP in files:
        return False
    if METRICS in files or STATUS in files:
        return True
    return CONFIG in files and all(d in RUN_SUBDIRS or d.startswith(".") for d in dirs)


def discover(roots: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(run directory, display name) of every run under ``roots``, each once, in walk order."""
    found: dict[Path, str] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            raise ClfError("no such directory", root)
        label = root.resolve().name or str(root)
        for dirpath, dirnames, filenames in os.walk(root):
            if _is_run_dir(set(filenames), dirnames):
                dirnames.clear()
                path = Path(dirpath)
                relative = path.relative_to(root)
                found.setdefault(path.resolve(), label if relative == Path(".") else f"{label}/{relative}")
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in RUN_SUBDIRS)
    return [(path, name) for path, name in found.items()]


class _Unreadable(Exception):
    """A file exists but cannot be used (message says why)."""


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if there is no file; _Unreadable if it is broken."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unreadable(f"{path.name}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _Unreadable(f"{path.name}: not valid JSON ({len(data)} bytes; half-written?)") from None
    if not isinstance(obj, dict):
        raise _Unreadable(f"{path.name}: not a JSON object")
    return obj


def _read_yaml_config(path: Path) -> dict[str, Any]:
    """``config.yaml`` as a dict, or {} when missing or unreadable (it only labels unfinished runs)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        obj = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return obj if isinstance(obj, dict) else {}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"num_heads": 4}}`` -> ``{"model.num_heads": 4}``; lists become JSON text."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _progress(metrics: dict[str, Any]) -> str:
    steps, total = metrics.get("steps"), metrics.get("total_steps")
    if steps is None:
        return ""
    return f"step {steps}/{total}" if total else f"step {steps}"


def _last_line(text: Any, limit: int = 200) -> str:
    lines = str(text).strip().splitlines()
    line = lines[-1] if lines else ""  # a traceback's last line names the error
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_run(path: Path, name: str) -> RunRecord:
    """State, metrics and config of one run directory; never raises on broken files."""
    try:
        status = _read_json(path / STATUS)
        metrics = _read_json(path / METRICS)
    except _Unreadable as exc:
        return RunRecord(path, name, CORRUPT, str(exc), config=flatten(_read_yaml_config(path / CONFIG)))
    config_tree = metrics.get("config") if metrics else None
    config = flatten(config_tree) if isinstance(config_tree, dict) else flatten(_read_yaml_config(path / CONFIG))
    values = {key: _number(metrics.get(key)) for key in METRIC_KEYS} if metrics else {}
    if config.get(TRAIN_LIMIT, 0) is None and values.get("train_documents") is not None:
        # "no limit" is "all N documents": a learning curve's last point gets its place on the x axis
        config[TRAIN_LIMIT] = int(values["train_documents"])
    job_state = status.get("state") if status else None
    if metrics is not None and metrics.get("status") == COMPLETED:
        job_state = None  # training's own final record wins over a status.json that lags behind it
    if job_state is not None and job_state != COMPLETED:
        detail = _last_line(status.get("error") or "") or (_progress(metrics) if metrics else "")
        return RunRecord(path, name, str(job_state), detail, values, config)
    if metrics is None:
        if job_state == COMPLETED:
            return RunRecord(path, name, CORRUPT, f"{STATUS} says completed but there is no {METRICS}", config=config)
        return RunRecord(path, name, STARTED, f"no {METRICS} yet", config=config)
    run_state = metrics.get("status")
    if run_state in (COMPLETED, STOPPED):
        values[BUDGET] = values.get("steps")
    if run_state != COMPLETED:
        return RunRecord(path, name, str(run_state or "unknown"), _progress(metrics), values, config)
    if values.get("dev_f1") is None or not config:
        missing = "dev_f1" if values.get("dev_f1") is None else "its config"
        return RunRecord(path, name, CORRUPT, f"{METRICS}: completed but without {missing}", values, config)
    return RunRecord(path, name, COMPLETED, "", values, config)


def load_runs(roots: Iterable[str | Path]) -> list[RunRecord]:
    """Every run under ``roots``; ClfError if there is none. Corrupt runs are logged."""
    roots = list(roots)
    located = discover(roots)
    if not located:
        where = ", ".join(map(str, roots))
        raise ClfError(f"no runs found under {where} (no directory holds {METRICS}, {STATUS} or {CONFIG})")
    records = [read_run(path, name) for path, name in located]
    for record in records:
        if record.state == CORRUPT:
            log.warning("skipping %s: %s", record.name, record.detail)
    return records
