"""clf aggregate on generated sweep directories: grouping, statistics, unfinished and corrupt runs."""

from __future__ import annotations

import csv
import logging
import statistics
import struct
from pathlib import Path

import pytest

from helpers import HEADS, LRS, SEEDS, dev_f1_of

from clf.cli import main as clf_main
from clf.errors import ClfError
from clf.results.aggregate import aggregate, report
from clf.results.events import read_scalars
from clf.results.runs import discover, read_run
from clf.results.synthetic import completed_metrics, running_metrics, with_values, write_run

UNFINISHED = {"failed": "failed", "running": "running", "pending": "pending", "interrupted": "interrupted",
              "half-written": "corrupt", "empty-metrics": "corrupt", "list-metrics": "corrupt",
              "bad-status": "corrupt", "started": "started", "done-without-metrics": "corrupt"}


def completed_f1(heads: int | None = None, lr: float | None = None) -> list[float]:
    return [dev_f1_of(h, r, s) for h in HEADS for r in LRS for s in SEEDS
            if (heads is None or h == heads) and (lr is None or r == lr)]


def test_discovers_every_run_and_its_state(sweep):
    records = [read_run(path, name) for path, name in discover([sweep])]
    states = {Path(r.name).name: r.state for r in records}
    assert len(records) == len(HEADS) * len(LRS) * len(SEEDS) + len(UNFINISHED)
    assert {name: states[name] for name in UNFINISHED} == UNFINISHED
    assert sum(state == "completed" for state in states.values()) == 12
    failed = next(r for r in records if r.name.endswith("failed"))
    assert failed.detail == "RuntimeError: out of memory"
    assert next(r for r in records if r.name.endswith("/running")).detail == "step 12/30"


def test_groups_by_swept_keys_with_independent_statistics(sweep):
    agg = aggregate([sweep])
    assert agg.keys == ["model.num_heads", "optim.lr"]  # seed and run_dir vary too but are never swept keys
    assert len(agg.groups) == 4
    for _, group in agg.groups.iterrows():
        values = completed_f1(group["model.num_heads"], group["optim.lr"])
        assert group["runs"] == 3
        assert group["dev_f1_mean"] == pytest.approx(statistics.mean(values))
        assert group["dev_f1_std"] == pytest.approx(statistics.stdev(values))
        assert group["test_f1_mean"] == pytest.approx(statistics.mean(values) - 0.05)
        assert group["best_step"] == pytest.approx(21.0)
        assert group["train_seconds"] == pytest.approx(11.0)
    best = agg.groups[agg.groups["best"]]
    assert len(best) == 1
    assert (best["model.num_heads"].item(), best["optim.lr"].item()) == (4, 1e-2)


def test_by_accepts_a_unique_suffix(sweep):
    agg = aggregate([sweep], by=["num_heads"])
    assert agg.keys == ["model.num_heads"]
    assert agg.groups["runs"].tolist() == [6, 6]
    assert agg.groups["dev_f1_mean"].tolist() == pytest.approx([statistics.mean(completed_f1(h)) for h in HEADS])


@pytest.mark.parametrize("key, message", [("nonsense", "not a config key .*keys that vary: model.num_heads, optim.lr"),
                                          ("dir", "ambiguous: data.dir, embeddings.dir")])
def test_bad_by_key_is_a_one_line_error(sweep, key, message):
    with pytest.raises(ClfError, match=message):
        aggregate([sweep], by=[key])


def test_cli_writes_csv_and_markdown_and_lists_unfinished_runs(sweep, tmp_path, capsys, caplog):
    out = tmp_path / "results" / "heads"
    with caplog.at_level(logging.WARNING):
        assert clf_main(["aggregate", str(sweep), "--out", str(out), "--latex", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(out.with_name("heads.csv"))))
    assert len(rows) == 12 + len(UNFINISHED)
    assert {Path(r["run"]).name: r["state"] for r in rows if r["state"] != "completed"} == UNFINISHED
    by_name = {Path(r["run"]).name: r for r in rows}
    assert float(by_name["h4-lr0.01-s1"]["dev_f1"]) == dev_f1_of(4, 1e-2, 1)
    assert by_name["h4-lr0.01-s1"]["seed"] == "1"
    markdown = out.with_name("heads.md").read_text()
    assert markdown.strip() == printed.strip()
    best_line = next(line for line in markdown.splitlines() if line.rstrip().endswith("| *    |"))
    assert best_line.split("|")[1].strip() == "4" and best_line.split("|")[2].strip() == "0.01"
    assert f"{statistics.mean(completed_f1(4, 1e-2)):.4f} ± {statistics.stdev(completed_f1(4, 1e-2)):.4f}" in best_line
    unfinished = markdown.split(f"### Not completed ({len(UNFINISHED)})")[1]
    for name, state in UNFINISHED.items():
        assert any(f"runs/{name} " in line and f"| {state} " in line for line in unfinished.splitlines()), name
    assert "half-written?" in unfinished
    assert "\\begin{tabular}" in out.with_name("heads.tex").read_text()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("skipping" in m for m in warned) == 5


def test_test_f1_absent_when_test_had_no_labels(tmp_path, base):
    for seed in (0, 1):
        cfg = with_values(base, {"seed": seed})
        write_run(tmp_path / "s" / f"r{seed}", cfg, completed_metrics(cfg, 0.7 + seed / 10, None, 5, 10, 1.0))
    agg = aggregate([tmp_path / "s"])
    assert agg.keys == []
    assert agg.groups["runs"].tolist() == [2]
    assert agg.groups["dev_f1_mean"].item() == pytest.approx(0.75)
    line = next(ln for ln in report(agg).splitlines() if ln.startswith("| all runs"))
    assert [cell.strip() for cell in line.split("|")[2:5]] == ["2", "0.7500 ± 0.0707", "n/a"]


def test_no_train_limit_is_placed_at_the_number_of_training_documents(tmp_path, base):
    """A learning curve's "all documents" run groups and plots at its real size, not as None."""
    for limit, f1 in ((10, 0.6), (100, 0.7), (None, 0.8)):
        cfg = with_values(base, {"data.train_limit": limit})
        metrics = completed_metrics(cfg, f1, f1, 5, 10, 1.0)
        if limit is None:
            metrics["train_documents"] = 2500
        write_run(tmp_path / "s" / f"n{limit}", cfg, metrics)
    agg = aggregate([tmp_path / "s"])
    assert agg.keys == ["data.train_limit"]
    by_size = dict(zip(agg.groups["data.train_limit"], agg.groups["dev_f1_mean"]))
    assert by_size == {10: pytest.approx(0.6), 100: pytest.approx(0.7), 2500: pytest.approx(0.8)}


def test_a_single_run_dir_is_a_sweep_of_one(tmp_path, base):
    cfg = with_values(base, {"seed": 3})
    run = write_run(tmp_path / "one", cfg, completed_metrics(cfg, 0.8, 0.7, 5, 10, 1.0))
    agg = aggregate([run])
    assert agg.completed["run"].tolist() == ["one"]
    assert agg.groups["dev_f1_mean"].item() == pytest.approx(0.8)


def test_only_unfinished_runs_is_not_an_error(tmp_path, base, capsys):
    cfg = with_values(base, {})
    write_run(tmp_path / "s" / "a", cfg, running_metrics(cfg, None, None, 3, 30))
    assert clf_main(["aggregate", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "No completed runs yet." in printed
    assert any(line.split("|")[2].strip() == "running" for line in printed.splitlines() if line.startswith("| s/a"))
    assert not list(tmp_path.glob("o*.png"))


@pytest.mark.parametrize("case", ["missing", "empty", "bad-key"])
def test_cli_bad_input_exits_2_with_one_line(sweep, tmp_path, capsys, case):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    args = {"missing": [str(tmp_path / "nope")], "empty": [str(empty)],
            "bad-key": [str(sweep), "--by", "model.num_heads,bogus"]}[case]
    assert clf_main(["aggregate", *args, "--out", str(tmp_path / "o"), "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clf aggregate: error:")
    assert {"missing": "no such directory", "empty": "no runs found", "bad-key": "'bogus'"}[case] in err[0]


def test_event_reader_survives_partial_and_garbage_files(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as writer:
        for step in (10, 20, 30):
            writer.add_scalar("Loss/train_mean", 1.0, step)
            writer.add_scalar("F1/dev", step / 100, step)
    (event_file,) = tmp_path.glob("events.out.tfevents.*")
    steps, values = read_scalars(tmp_path, ["F1/dev"])["F1/dev"]
    assert steps.tolist() == [10, 20, 30] and values.tolist() == pytest.approx([0.1, 0.2, 0.3])
    data = event_file.read_bytes()
    event_file.write_bytes(data[:-3])  # a writer still busy: the last record (F1/dev at 30) is cut short
    steps, _ = read_scalars(tmp_path, ["F1/dev"])["F1/dev"]
    assert steps.tolist() == [10, 20]
    event_file.write_bytes(data[:40] + b"\x07" * 200)  # a length field far beyond the end
    assert read_scalars(tmp_path, ["F1/dev"]) == {}
    garbage = b"\x2a\x08F1/dev\xff\xff"  # looks like a summary naming F1/dev, but is no Event
    record = struct.pack("<Q", len(garbage)) + b"crc!" + garbage + b"crc!"
    event_file.write_bytes(record + data[:-3])
    assert read_scalars(tmp_path, ["F1/dev"])["F1/dev"][0].tolist() == [10, 20]  # the bad record is skipped
    assert read_scalars(tmp_path / "no-such-tb", ["F1/dev"]) == {}


def test_event_reader_applies_resume_purge(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as first:
        for step in (10, 20, 30):
            first.add_scalar("F1/dev", step / 100, step)
    with SummaryWriter(str(tmp_path), purge_step=20, filename_suffix=".resumed") as resumed:
        resumed.add_scalar("F1/dev", 0.9, 20)
        resumed.add_scalar("F1/dev", 0.95, 40)
    steps, values = read_scalars(tmp_path, ["F1/dev"])["F1/dev"]
    assert steps.tolist() == [10, 20, 40]
    assert values.tolist() == pytest.approx([0.1, 0.9, 0.95])


def test_aggregate_never_imports_torch(sweep, tmp_path):
    """Startup cost: no torch, no Hydra; matplotlib is imported only by the forked plotting process."""
    import subprocess
    import sys

    probe = ("import sys; from clf.cli import main; code = main(sys.argv[1:]); "
             "print(sorted(m for m in ('torch', 'matplotlib', 'tensorflow', 'hydra') if m in sys.modules)); "
             "sys.exit(code)")
    for extra, plots in ((["--no-plots"], False), ([], True)):
        out = tmp_path / ("plots" if plots else "table")
        result = subprocess.run([sys.executable, "-c", probe, "aggregate", str(sweep), "--out", str(out), *extra],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]"
        assert bool(list(tmp_path.glob(f"{out.name}*.png"))) == plots


@pytest.mark.parametrize("lagging", ["running", "requeued", "failed"])
def test_completed_metrics_win_over_a_lagging_status(tmp_path, base, lagging):
    """A job killed after training wrote its final metrics.json, before its own final record."""
    metrics = completed_metrics(base, 0.8, 0.75, best_step=20, steps=30, train_seconds=10.0)
    write_run(tmp_path / "run", base, metrics, job={"state": lagging, "error": None})
    record = read_run(tmp_path / "run", "run")
    assert (record.state, record.metrics["dev_f1"]) == ("completed", 0.8)
