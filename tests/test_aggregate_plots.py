"""clf aggregate's plots: valid PNGs, one series per group, the plotted numbers."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from matplotlib.image import imread

from helpers import HEADS, LRS, SEEDS, curve_of, dev_f1_of

from clf.cli import main as clf_main
from clf.results.aggregate import aggregate, plot_figures
from clf.results.plots import mean_curve
from clf.results.synthetic import completed_metrics, with_values, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_cli_writes_decodable_pngs(sweep, tmp_path):  # noqa: F811
    out = tmp_path / "plots" / "heads"
    assert clf_main(["aggregate", str(sweep), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.parent.glob("*.png"))
    assert names == ["heads.dev_f1.png", "heads.f1_vs_model.num_heads.png", "heads.f1_vs_optim.lr.png"]
    for name in names:
        path = out.parent / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(path)
        assert image.shape == (450, 700, 4)
        assert image[..., :3].std() > 0.05  # something is drawn


def test_dev_f1_curves_one_line_per_group_with_seed_means(sweep):  # noqa: F811
    figure = plot_figures(aggregate([sweep]))[".dev_f1.png"]
    (ax,) = figure.axes
    lines = ax.get_lines()
    assert len(lines) == len(HEADS) * len(LRS)
    (bands,) = ax.collections
    assert len(bands.get_paths()) == len(lines)  # a min-max band per group (3 seeds each)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "model.num_heads=2, optim.lr=0.001 (n=3)"
    for line, (heads, lr) in zip(lines, [(h, r) for h in HEADS for r in LRS]):
        curves = [curve_of(dev_f1_of(heads, lr, s)) for s in SEEDS]
        assert line.get_xdata().tolist() == [10, 20, 30]
        expected = [statistics.mean(c[i][1] for c in curves) for i in range(3)]
        assert line.get_ydata().tolist() == pytest.approx(expected)


def test_f1_against_numeric_key_one_series_per_other_setting(sweep):  # noqa: F811
    figures = plot_figures(aggregate([sweep]))
    (ax,) = figures[".f1_vs_model.num_heads.png"].axes
    lines = ax.get_lines()
    assert len(lines) == 2 * len(LRS)  # per lr: dev F1 (solid) and test F1 (dashed)
    solid = [ln for ln in lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
    assert len(solid) == len(dashed) == len(LRS)
    for line, lr in zip(solid, LRS):
        assert line.get_xdata().tolist() == list(HEADS)
        expected = [statistics.mean(dev_f1_of(h, lr, s) for s in SEEDS) for h in HEADS]
        assert line.get_ydata().tolist() == pytest.approx(expected)
    assert ax.get_xlabel() == "model.num_heads"
    (ax_lr,) = figures[".f1_vs_optim.lr.png"].axes
    assert ax_lr.get_xscale() == "log"


def test_string_keys_and_runs_without_events_get_no_plots(tmp_path, base):  # noqa: F811
    for i, schedule in enumerate(("none", "cosine")):
        cfg = with_values(base, {"optim.schedule": schedule})
        write_run(tmp_path / "s" / f"r{i}", cfg, completed_metrics(cfg, 0.7, 0.6, 5, 10, 1.0))
    agg = aggregate([tmp_path / "s"])
    assert agg.keys == ["optim.schedule"]
    assert plot_figures(agg) == {}


def test_mean_curve_over_runs_with_different_steps():
    steps, mean, low, high = mean_curve([(np.array([1, 2]), np.array([0.2, 0.4])),
                                         (np.array([2, 3]), np.array([0.6, 0.8]))])
    assert steps.tolist() == [1, 2, 3]
    assert mean.tolist() == pytest.approx([0.2, 0.5, 0.8])
    assert low.tolist() == pytest.approx([0.2, 0.4, 0.8]) and high.tolist() == pytest.approx([0.2, 0.6, 0.8])
