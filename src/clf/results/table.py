"""Runs as one pandas table, the config keys a sweep varies, and statistics per group of runs."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import pandas as pd

from clf.errors import ClfError
from clf.names import NOT_GROUPED, key_in
from clf.results.render import format_seconds, format_value
from clf.results.runs import METRIC_KEYS, RunRecord

RUN_COLUMNS = ("run", "state")
TAIL_COLUMNS = ("detail", "path")
STATS = {"runs": ("dev_f1", "size"), "dev_f1_mean": ("dev_f1", "mean"), "dev_f1_std": ("dev_f1", "std"),
         "test_f1_mean": ("test_f1", "mean"), "test_f1_std": ("test_f1", "std"),
         "best_step": ("best_step", "mean"), "train_seconds": ("train_seconds", "mean"), "members": ("path", list)}
ENSEMBLE_HEADERS = {"ensemble_dev_f1": "ensemble dev F1", "ensemble_test_f1": "ensemble test F1"}  # --ensemble


def runs_frame(records: Sequence[RunRecord]) -> tuple[pd.DataFrame, list[str]]:
    """One row per run (every state) and the config column names, in config order."""
    config_keys: dict[str, None] = {}
    rows = []
    for r in records:
        config_keys.update(dict.fromkeys(r.config))
        rows.append({"run": r.name, "state": r.state, **r.metrics, **r.config, "detail": r.detail, "path": str(r.path)})
    keys = [k for k in config_keys if k not in RUN_COLUMNS + TAIL_COLUMNS]
    columns = [*RUN_COLUMNS, *METRIC_KEYS, *keys, *TAIL_COLUMNS]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame[list(METRIC_KEYS)] = frame[list(METRIC_KEYS)].astype(float)
    return frame, keys


def _ignored(key: str) -> bool:
    return key_in(key, NOT_GROUPED)


def swept_keys(frame: pd.DataFrame, config_keys: Sequence[str]) -> list[str]:
    """Config keys whose value differs between runs (``seed`` and where-it-ran keys excepted)."""
    return [k for k in config_keys if not _ignored(k) and frame[k].nunique(dropna=False) > 1]


def resolve_keys(requested: Sequence[str], config_keys: Sequence[str], swept: Sequence[str]) -> list[str]:
    """Full names of ``--by`` keys; a unique suffix is enough (``lr`` -> ``optim.lr``)."""
    resolved = []
    for key in requested:
        if key in config_keys:
            resolved.append(key)
            continue
        matches = [k for k in config_keys if k.endswith("." + key)]
        if len(matches) == 1:
            resolved.append(matches[0])
        elif matches:
            raise ClfError(f"--by key {key!r} is ambiguous: {', '.join(matches)}")
        else:
            hint = ", ".join(swept) if swept else "none; every run has the same config"
            raise ClfError(f"--by key {key!r} is not a config key (keys that vary: {hint})")
    return list(dict.fromkeys(resolved))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, "")
    if isinstance(value, numbers.Real):
        return (0, float(value))
    return (1, str(value))


def group_stats(done: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per group of completed runs: runs, dev/test F1 mean and std, best step, time, ``best`` flag.

    Groups are sorted by their key values; ``members`` lists each group's run paths.
    """
    keys = list(keys)
    if keys:
        table = done.groupby(keys, dropna=False, sort=False).agg(**STATS).reset_index()
        order = sorted(range(len(table)), key=lambda i: tuple(_sort_key(table[k].iat[i]) for k in keys))
        table = table.iloc[order].reset_index(drop=True)
    else:
        table = done.assign(_all=0).groupby("_all").agg(**STATS).reset_index(drop=True)
    table["best"] = False
    if len(table) and table["dev_f1_mean"].notna().any():
        table.loc[table["dev_f1_mean"].idxmax(), "best"] = True
    return table


def group_label(row: pd.Series, keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={format_value(row[k])}" for k in keys) or "all runs"


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def grouped_rows(groups: pd.DataFrame, keys: Sequence[str]) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, cells and right-alignment of the grouped table (for Markdown and LaTeX)."""
    key_headers = list(keys) or ["group"]
    ensemble = [c for c in ENSEMBLE_HEADERS if c in groups.columns]
    headers = [*key_headers, "runs", "dev F1", "test F1", *(ENSEMBLE_HEADERS[c] for c in ensemble), "best step",
               "train time", "best"]
    rows = []
    for _, g in groups.iterrows():
        key_cells = [format_value(g[k]) for k in keys] or ["all runs"]
        best_step = "n/a" if math.isnan(g["best_step"]) else f"{g['best_step']:.0f}"
        ensemble_cells = [_mean_std(g[c], math.nan) for c in ensemble]
        rows.append([*key_cells, str(g["runs"]), _mean_std(g["dev_f1_mean"], g["dev_f1_std"]),
                     _mean_std(g["test_f1_mean"], g["test_f1_std"]), *ensemble_cells, best_step,
                     format_seconds(g["train_seconds"]), "*" if g["best"] else ""])
    right = [False] * len(key_headers) + [True] * (5 + len(ensemble)) + [False]
    return headers, rows, right


def pending_rows(pending: pd.DataFrame, keys: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the not-completed runs: name, state, what is known, their settings."""
    rows = [[r["run"], r["state"], r["detail"] or "", _settings(r, [*keys, "seed"])] for _, r in pending.iterrows()]
    return ["run", "state", "detail", "settings"], rows


def _settings(row: pd.Series, keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={format_value(row[k])}" for k in keys if k in row.index)


def stopped_rows(stopped: pd.DataFrame, keys: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the runs successive halving stopped at a budget: the furthest first,
    then by dev F1."""
    ordered = stopped.sort_values(["budget", "dev_f1", "run"], ascending=[False, False, True], na_position="last")
    rows = [[r["run"], "-" if math.isnan(r["budget"]) else f"{r['budget']:.0f}", _mean_std(r["dev_f1"], math.nan),
             _settings(r, [*keys, "seed"])] for _, r in ordered.iterrows()]
    return ["run", "budget (steps)", "dev F1", "settings"], rows
