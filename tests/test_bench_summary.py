"""bench/summary.py: bench/RESULTS.md's summary is made from the stages' output files; a stage
rerun replaces its rows, a stage with no output this time keeps its rows of the table being
replaced (its commit and date with them), a stage never measured says so, and the text around
the table is left as it was."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_summary():
    spec = importlib.util.spec_from_file_location("bench_summary", REPO / "bench" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_outputs(directory: Path, commit: str, *, size_mb: float | None = None, demo_s: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.txt"):
        path.unlink()
    if size_mb is not None:
        (directory / "size.txt").write_text(
            f"# stage size at {commit} 2026-12-08 01:00: nice -n 5 python bench/run_size.py\n"
            f"run: {size_mb} MB with keep_checkpoints=best\n{size_mb * 5:.2f} MB with all\n")
    if demo_s is not None:
        (directory / "demo.txt").write_text(
            f"# stage demo at {commit} 2026-12-08 02:00: bash launch/demo.sh\ndemo finished in {demo_s} s\n")
    return directory


def rows(table: str) -> dict[str, str]:
    return {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}


def test_a_stage_without_output_keeps_its_rows_and_commit_and_a_rerun_stage_replaces_them(tmp_path):
    summary = load_summary()
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmarks\n\nbefore\n{summary.BEGIN}\nold table\n{summary.END}\nafter: details\n")
    size_figure = next(r.figure for r in summary.ROWS if r.stage == "size")
    demo_figure = next(r.figure for r in summary.ROWS if r.stage == "demo")
    gpu_figure = next(r.figure for r in summary.ROWS if r.stage == "gpu")

    # first regeneration: size at aaaaaaa (not met: 16 MB), demo at aaaaaaa
    first = summary.summary(write_outputs(tmp_path / "out", "aaaaaaa", size_mb=16.0, demo_s=50),
                            summary.previous_rows(results))
    summary.write_into(results, first)
    assert "aaaaaaa, 2026-12-08 01:00" in rows(first)[size_figure] and "**NOT met**" in rows(first)[size_figure]
    assert "not measured: no output of stage `gpu`" in rows(first)[gpu_figure]

    # second: only demo rerun, at bbbbbbb; size keeps its row (commit aaaaaaa), demo is replaced
    second = summary.summary(write_outputs(tmp_path / "out", "bbbbbbb", demo_s=40), summary.previous_rows(results))
    summary.write_into(results, second)
    assert rows(second)[size_figure] == rows(first)[size_figure]
    assert "bbbbbbb, 2026-12-08 02:00" in rows(second)[demo_figure] and "**40 s**" in rows(second)[demo_figure]
    assert "not measured: no output of stage `gpu`" in rows(second)[gpu_figure]
    assert "Stages' commits: aaaaaaa, bbbbbbb" in second and "previous summary" in second and ": size" in second

    text = results.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n") and text.endswith(f"{summary.END}\nafter: details\n")
    assert "old table" not in text and text.count(summary.BEGIN) == 1


def test_without_a_previous_table_every_missing_stage_says_not_measured(tmp_path):
    summary = load_summary()
    table = summary.summary(write_outputs(tmp_path / "out", "ccccccc", demo_s=30), summary.previous_rows(None))
    measured = [line for line in table.splitlines() if line.startswith("| ") and "ccccccc" in line]
    assert len(measured) == 1 and "previous summary" not in table
    assert sum("not measured" in line for line in table.splitlines()) == len(summary.ROWS) - 1
