"""``clf aggregate`` as a library call: runs -> tables (CSV, Markdown, LaTeX) and plots."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from clf.atomic import atomic_write_text
from clf.results.render import latex_table, markdown_table
from clf.results.runs import COMPLETED, METRIC_KEYS, STOPPED, load_runs
from clf.results.table import (STATS, RUN_COLUMNS, TAIL_COLUMNS, group_label, group_stats, grouped_rows,
                               pending_rows, resolve_keys, runs_frame, stopped_rows, swept_keys)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clf.results.ensemble import GroupEnsemble

log = logging.getLogger(__name__)
DEV_F1_TAG = "F1/dev"


@dataclass
class Aggregate:
    """Every run (one row each), the keys runs are grouped by, the groups, and the unfinished runs."""

    roots: list[Path]
    runs: pd.DataFrame
    config_keys: list[str]
    keys: list[str]
    groups: pd.DataFrame
    pending: pd.DataFrame
    stopped: pd.DataFrame = field(default_factory=pd.DataFrame)   # paused at a halving rung's budget
    ensembles: list[GroupEnsemble] | None = field(default=None)

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["state"] == COMPLETED]


def aggregate(roots: Sequence[str | Path], by: Sequence[str] | None = None, ensemble: bool = False) -> Aggregate:
    """Read every run under ``roots`` and group the completed ones by ``by`` (default: swept keys).

    With ``ensemble``, each group's runs (its seeds) are also averaged into one seed ensemble.
    """
    frame, config_keys = runs_frame(load_runs(roots))
    done = frame[frame["state"] == COMPLETED]
    trained = frame[frame["state"].isin([COMPLETED, STOPPED])]  # stopped: a halving search's other configurations
    swept = swept_keys(trained if len(trained) else frame, config_keys)
    keys = resolve_keys(by, config_keys, swept) if by else swept
    groups = group_stats(done, keys) if len(done) else pd.DataFrame(columns=[*keys, *STATS, "best"])
    found = None
    if ensemble:
        from clf.results.ensemble import ensembles, with_f1_columns

        found = ensembles(groups, [group_label(g, keys) for _, g in groups.iterrows()])
        groups = with_f1_columns(groups, found)
    unfinished = frame[~frame["state"].isin([COMPLETED, STOPPED])]
    return Aggregate([Path(r) for r in roots], frame, config_keys, keys, groups, unfinished,
                     frame[frame["state"] == STOPPED], found)


def report(agg: Aggregate) -> str:
    """The grouped table and the list of unfinished runs, as Markdown."""
    where = ", ".join(map(str, agg.roots))
    n_done, n_pending, n_stopped = len(agg.completed), len(agg.pending), len(agg.stopped)
    stopped = f"{n_stopped} stopped at a successive-halving budget, " if n_stopped else ""
    lines = [f"## Results: {where}", "",
             f"{len(agg.runs)} runs: {n_done} completed, {stopped}{n_pending} not completed; "
             f"grouped by {', '.join(agg.keys) or 'nothing (no config key varies)'}.", ""]
    if n_done:
        lines += [markdown_table(*_grouped(agg)), "",
                  "`*`: best mean dev F1. F1: mean ± sample std over the group's runs; test F1 at each run's "
                  "best-dev checkpoint; best step and train time: means."
                  + (" Ensemble F1: the F1 of the group's mean predicted probability (its seeds averaged)."
                     if agg.ensembles is not None else ""), ""]
    else:
        lines += ["No completed runs yet.", ""]
    if n_stopped:
        headers, rows = stopped_rows(agg.stopped, agg.keys)
        lines += [f"### Stopped at a budget ({n_stopped})", "", markdown_table(headers, rows), "",
                  "Successive halving did not promote these runs past the budget shown: dev F1 is the best they "
                  "reached by then; no test F1 (only runs that completed are tested).", ""]
    if n_pending:
        headers, rows = pending_rows(agg.pending, agg.keys)
        lines += [f"### Not completed ({n_pending})", "", markdown_table(headers, rows), ""]
    return "\n".join(lines)


def _grouped(agg: Aggregate) -> tuple[list[str], list[list[str]], list[bool]]:
    return grouped_rows(agg.groups, agg.keys)


def runs_csv(agg: Aggregate) -> str:
    """One row per run: name, state, grouping keys, metrics, the rest of the config, detail, path."""
    rest = [k for k in agg.config_keys if k not in agg.keys]
    columns = [*RUN_COLUMNS, *agg.keys, *METRIC_KEYS, *rest, *TAIL_COLUMNS]
    buffer = io.StringIO()
    agg.runs[columns].to_csv(buffer, index=False)
    return buffer.getvalue()


def output_path(out: Path, suffix: str) -> Path:
    """``results/NAME`` + ``.csv`` -> ``results/NAME.csv`` (dots in NAME are kept)."""
    return out.with_name(out.name + suffix)


def write_tables(agg: Aggregate, out: Path, latex: bool = False) -> list[Path]:
    """``NAME.csv`` (runs), ``NAME.md`` (report), with ``latex`` ``NAME.tex`` (grouped table), and the
    seed ensembles' Kaggle files ``NAME.ensemble/<group>/<split>.csv`` when they were computed."""
    written = [atomic_write_text(output_path(out, ".csv"), runs_csv(agg)),
               atomic_write_text(output_path(out, ".md"), report(agg))]
    if latex and len(agg.groups):
        written.append(atomic_write_text(output_path(out, ".tex"), latex_table(*_grouped(agg))))
    if agg.ensembles:
        from clf.results.ensemble import write_ensembles

        written += write_ensembles(agg.ensembles, output_path(out, ".ensemble"))
    return written


def plot_figures(agg: Aggregate) -> dict[str, Figure]:
    """File suffix -> figure: ``.dev_f1.png`` (curves from TensorBoard), ``.f1_vs_<key>.png`` per numeric key."""
    if not len(agg.groups):
        return {}
    from clf.results.events import read_scalars
    from clf.results.plots import dev_f1_curves, f1_against, is_numeric_key

    curves = []
    for _, group in agg.groups.iterrows():
        series = [read_scalars(Path(p) / "tb", [DEV_F1_TAG]).get(DEV_F1_TAG) for p in group["members"]]
        curves.append((group_label(group, agg.keys), [s for s in series if s is not None]))
    figures = {}
    if any(runs for _, runs in curves):
        figures[".dev_f1.png"] = dev_f1_curves(curves)
    else:
        log.warning("no %s scalars in the runs' tb/ event files; no curve plot", DEV_F1_TAG)
    for key in agg.keys:
        if is_numeric_key(agg.groups[key]):
            figures[f".f1_vs_{key}.png"] = f1_against(agg.groups, key, [k for k in agg.keys if k != key])
    return figures


def write_plots(agg: Aggregate, out: Path) -> list[Path]:
    """The PNGs of ``plot_figures``, next to the tables."""
    from clf.results.plots import save_png

    return [save_png(fig, output_path(out, suffix)) for suffix, fig in plot_figures(agg).items()]
