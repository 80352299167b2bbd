"""bench/RESULTS.md's summary table, made from the output of ``bash bench/all.sh`` (issue 21).

Each row reads one figure from one stage's output file (``OUT/STAGE.txt``, headed by the commit and
date the stage ran at) and says whether its target is met; a stage with no output file says so.
``--write RESULTS.md`` replaces the table between the two ``SUMMARY`` marker lines there (the
rest of the file is left as it is).

    python bench/summary.py --outputs bench/out/all [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from clf.atomic import atomic_write_text

BEGIN = "<!-- SUMMARY: made by bench/summary.py from bench/all.sh's output; do not edit by hand -->"
END = "<!-- SUMMARY END -->"
HEADER = re.compile(r"^# stage (\S+) at (\S+) (\S+ \S+): (.*)$", re.M)

# a figure read from a stage's output: (what it measured, whether the target is met; None: no target)
Figure = tuple[str, bool | None]


@dataclass
class Row:
    figure: str
    target: str
    stage: str
    read: Callable[[str], Figure]


def grab(pattern: str, text: str) -> re.Match:
    match = re.search(pattern, text, re.M)
    if match is None:
        raise LookupError(pattern)
    return match


def number(pattern: str, text: str) -> float:
    return float(grab(pattern, text).group(1))


# ---- the defaults bench (bench/defaults_bench.py: one JSON line) ----------------------------------

def defaults(text: str) -> dict:
    """The bench's last summary (it prints one after each seed)."""
    found = re.findall(r"^summary-json: (.*)$", text, re.M)
    if not found:
        raise LookupError("summary-json")
    return json.loads(found[-1])


def f1_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    f1 = c["shipped"]["test_f1"]
    return (f"**{f1[0]:.4f} ± {f1[1]:.4f}** (seeds {c['shipped']['seeds']}); issue 12's defaults "
            f"{c['issue12']['test_f1'][0]:.4f} ± {c['issue12']['test_f1'][1]:.4f}; previous "
            f"{c['previous']['test_f1'][0]:.4f} ± {c['previous']['test_f1'][1]:.4f}", f1[0] >= 0.905)


def time_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    ratio = c["shipped"]["train_s"] / c["issue12"]["train_s"]
    return (f"**{ratio:.2f}x** ({c['shipped']['train_s']:.2f} s against {c['issue12']['train_s']:.2f} s, medians; "
            f"previous defaults {c['previous']['train_s']:.2f} s)", ratio <= 0.5)


def disk_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    mb = c["shipped"]["du_mb"]
    return f"**{mb:.1f} MB** (du); issue 12's defaults {c['issue12']['du_mb']:.1f} MB", mb <= 15


def rss_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    mb = c["shipped"]["peak_rss_mb"]
    return f"**{mb:.0f} MB**; issue 12's defaults {c['issue12']['peak_rss_mb']:.0f} MB", mb <= 1500


def ratio_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    ratio = c["shipped"]["ratio"]
    return (f"**{ratio:.2f}** ({c['shipped']['wall_s']:.1f} s / {c['shipped']['train_s']:.1f} s); issue 12's "
            f"defaults {c['issue12']['ratio']:.2f}", ratio <= 1.5)


def fp16_row(text: str) -> Figure:
    gap = defaults(text)["fp16_best"]
    if gap is None:
        raise LookupError("no shipped-fp32 runs beside shipped's")
    return (f"**{gap['max_probability_gap']:.1e}** ({gap['runs']} seed(s)); labels flipped {gap['labels_flipped']} "
            f"of {gap['documents']}; "
            f"F1 within {gap['max_f1_gap']:.1e}", gap["max_probability_gap"] <= 5e-3)


def accuracy_row(text: str) -> Figure:
    c = defaults(text)["candidates"]
    acc = c["shipped"]["test_accuracy"][0] * 100
    return f"{acc:.2f}% (issue 12's defaults {c['issue12']['test_accuracy'][0] * 100:.2f}%)", acc >= 91.22


# ---- the other benches (their printed lines) --------------------------------------------------------

def at_most(pattern: str, limit: float, unit: str = " s", scale: float = 1.0) -> Callable[[str], Figure]:
    def read(text: str) -> Figure:
        value = number(pattern, text) * scale
        return f"**{value:.3g}{unit}**", value <= limit
    return read


def at_least(pattern: str, limit: float, unit: str = "") -> Callable[[str], Figure]:
    def read(text: str) -> Figure:
        value = number(pattern, text)
        return f"**{value:.3g}{unit}**", value >= limit
    return read


def size_row(text: str) -> Figure:
    best, every = (number(p, text) for p in (r"run: ([\d.]+) MB with keep_checkpoints=best", r"([\d.]+) MB with all"))
    return f"**{best:.2f} MB** ({every:.2f} MB with `all`)", best <= 15


def pack_row(text: str) -> Figure:
    match = grab(r"speed-up ([\d.]+)x .*: (\d+) of (\d+) runs", text)
    speed, same, runs = float(match.group(1)), int(match.group(2)), int(match.group(3))
    return f"**{speed:.2f}x**, {same} of {runs} runs identical", speed >= 3 and same == runs


def quality_row(text: str) -> Figure:
    gaps = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (\S+) \| \d+ \|.*\| ([+-][\d.]+) \|$", text, re.M)}
    if not gaps:
        raise LookupError("the table")
    return ", ".join(f"{k} {v:+.4f}" for k, v in gaps.items()), all(v >= 0 for v in gaps.values())


def halving_row(text: str) -> Figure:
    diff = number(r"halving winner\): ([+-][\d.]+)", text)
    ratio = number(r"training steps: .* ratio ([\d.]+)", text)
    return f"test F1 grid best - winner **{diff:+.4f}**; steps **{ratio:.3f}x**", diff <= 0.002 and ratio <= 1 / 3


def w2v_quality_row(text: str) -> Figure:
    ours = grab(r"^\| ours, trained\s*\| ([\d.]+ ± [\d.]+)", text).group(1)
    random = grab(r"^\| random[\w ,]*?\s*\| ([\d.]+ ± [\d.]+)", text).group(1)  # "random init, trained"
    return f"ours {ours} vs random {random}", float(ours.split()[0]) >= float(random.split()[0])


def gpu_row(text: str) -> Figure:
    match = grab(r"^\| epoch at batch 256, defaults \| ([^|]*) \| ([^|]*) \|", text)
    result, figure = match.group(1).strip(), match.group(2).strip()
    return (f"**{figure}**", float(figure.split()[0]) <= 0.05) if figure else (result, None)


ROWS = [
    Row("IMDB test F1 of the shipped defaults (3 seeds)", ">= 0.905", "defaults", f1_row),
    Row("training time of a default IMDB run against issue 12's defaults (same bench run)", "<= 0.5x", "defaults",
        time_row),
    Row("disk of a finished default IMDB run (`du` of the run directory)", "<= 15 MB", "defaults", disk_row),
    Row("peak RSS of a default IMDB run (`clf train` process)", "<= 1.5 GB", "defaults", rss_row),
    Row("default IMDB run: process wall time / `train_seconds` (warm token cache)", "<= 1.5", "defaults", ratio_row),
    Row("fp16 `best.pt` against fp32: largest IMDB test probability difference", "<= 5e-3", "defaults", fp16_row),
    Row("IMDB test accuracy of the shipped defaults (stretch: NBSVM-bi)", ">= 91.22%", "defaults", accuracy_row),
    Row("disk of a finished default IMDB run (`bench/run_size.py`, keep_checkpoints=best)", "<= 15 MB", "size",
        size_row),
    Row("default IMDB run, process wall / `train_seconds`, median of 5 (`overhead_bench.py`)", "<= 1.5", "overhead",
        at_most(r"^this: .* ratio ([\d.]+)", 1.5, unit="")),
    Row("read + tokenize + ids, 50k IMDB docs, cold (shipped defaults' tokens)", "<= 4 s", "core",
        at_most(r"^read\+tokenize\+ids: .*'cold_s': ([\d.]+)", 4)),
    Row("the same from the token-id cache", "<= 0.3 s", "core", at_most(r"^read\+tokenize\+ids: .*'cached_s': ([\d.]+)", 0.3)),
    Row("one IMDB epoch at batch 256 (shipped defaults, `clf train` code path, no evaluation)", "<= 1.0 s", "core",
        at_most(r"^our epochs: .*256: \{'epoch_s': ([\d.]+)", 1.0)),
    Row("... speed-up over the homework loop (batch 1, dense AdamW, the homework's model)", ">= 200x", "core",
        at_least(r"^speed-up at batch 256 over the homework loop: ([\d.]+)x", 200, "x")),
    Row("evaluate the 25k test docs (shipped defaults)", "<= 0.25 s", "core", at_most(r"^eval: .*'eval_s': ([\d.]+)", 0.25)),
    Row("training time until test F1 >= 0.88 (shipped defaults)", "<= 3 s", "core",
        at_most(r"^time to test F1 >= 0.88: .*'train_s': ([\d.]+)", 3)),
    Row("peak RSS of a `clf train` process (IMDB, 1 epoch, shipped defaults)", "<= 1.5 GB", "core",
        at_most(r"^peak RSS: \{'peak_rss_mb': ([\d.]+)", 1500, unit=" MB")),
    Row("`clf aggregate` of 1,000 runs (tables + plots)", "<= 2 s", "aggregate",
        at_most(r"^\| `clf aggregate \(tables \+ plots\)`, fresh process \| ([\d.]+) s", 2)),
    Row("`clf submit` of a 100-run sweep to the local Slurm cluster", "<= 3 s", "slurm",
        at_most(r"^\| `clf submit` 100 runs \(fresh process\) \| ([\d.]+) s", 3)),
    Row("`clf status` on that sweep", "<= 2 s", "slurm", at_most(r"^\| `clf status` 100 runs \(fresh process\) \| ([\d.]+) s", 2)),
    Row("48 runs of 100 steps, 8 runs per array task vs 1 (demo data, local Slurm)", ">= 3x, identical metrics", "pack",
        pack_row),
    Row("the README's demo (`bash launch/demo.sh`)", "<= 180 s", "demo", at_most(r"demo finished in (\d+) s", 180)),
    Row("`clf w2v` against bare gensim, cold token cache (wall)", "<= 1.1x", "w2v-speed",
        at_most(r"clf w2v \(cold cache\)\s+[\d.]+ s wall\s+[\d.]+ s CPU\s+ours/bare: wall ([\d.]+)", 1.1, unit="x")),
    Row("test F1 with our vectors vs random initialisation (`w2v_quality.py`, 3 seeds)", "ours >= random", "w2v-quality",
        w2v_quality_row),
    Row("shipped defaults vs fastText's dev-selected best, test F1 (3 seeds), every dataset", "ours >= fastText",
        "quality", quality_row),
    Row("successive halving vs grid, 27 IMDB configurations", "within 0.002, <= 1/3 of the steps", "halving",
        halving_row),
    Row("one IMDB epoch at batch 256 on a GPU (shipped defaults)", "<= 0.05 s", "gpu", gpu_row),
]


def stage_outputs(directory: Path) -> dict[str, tuple[str, str, str, str]]:
    """{stage: (commit, date, command, text)} of the output files in ``directory``."""
    out = {}
    for path in sorted(directory.glob("*.txt")):
        text = path.read_text(errors="replace")
        match = HEADER.search(text)
        if match:
            out[match.group(1)] = (match.group(2), match.group(3), match.group(4), text)
    return out


def cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def previous_rows(results: Path | None) -> dict[str, tuple[str, str]]:
    """{figure: (its table line, its commit)} of the measured rows of the summary in ``results``."""
    if results is None or not results.exists():
        return {}
    text = results.read_text()
    if BEGIN not in text or END not in text:
        return {}
    rows = {}
    for line in text.split(BEGIN, 1)[1].split(END, 1)[0].splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 6 and cells[4] and cells[4] != "---":
            rows[cells[0]] = (line.strip(), cells[4].split(",")[0].strip())
    return rows


def summary(directory: Path, previous: dict[str, tuple[str, str]] | None = None) -> str:
    """The table; ``previous`` (``previous_rows``): the rows kept for stages with no output here."""
    outputs, previous = stage_outputs(directory), previous or {}
    lines = ["| figure | target | measured | met | at (commit, date) | stage: command |",
             "| --- | --- | --- | --- | --- | --- |"]
    kept: dict[str, str] = {}  # {stage: commit} of the rows kept from the previous table
    for row in ROWS:
        if row.stage not in outputs:
            if row.figure in previous:
                line, kept[row.stage] = previous[row.figure]
                lines.append(line)
            else:
                lines.append(f"| {row.figure} | {row.target} | not measured: no output of stage `{row.stage}` | | | |")
            continue
        commit, date, command, text = outputs[row.stage]
        try:
            measured, met = row.read(text)
            verdict = "" if met is None else ("met" if met else "**NOT met**")
        except (LookupError, ValueError, KeyError, TypeError) as exc:
            failed = "FAILED" in text
            measured, verdict = f"not in the output ({'the stage failed' if failed else exc})", ""
        short = re.sub(r"(nice -n \d+ )?\S*python\S* ", "", command)       # the interpreter, its nice
        short = re.sub(r" (--?[\w.-]+[= ])?/\S+", "", short)                # arguments that are local paths
        short = re.sub(r"\S*/(bench/\S+\.(py|sh))", r"\1", short)
        lines.append(f"| {row.figure} | {row.target} | {cell(measured)} | {verdict} | {commit}, {date} | "
                     f"{row.stage}: `{cell(short)}` |")
    commits = sorted({o[0] for o in outputs.values()} | set(kept.values()))
    lines += ["", f"Stages' commits: {', '.join(commits) or 'none'} (`bash bench/all.sh`; outputs in {directory})."]
    if kept:
        lines.append(f"Kept from the previous summary, with their commits (no output of these stages in "
                     f"{directory}): {', '.join(kept)}.")
    return "\n".join(lines)


def write_into(results: Path, table: str) -> None:
    text = results.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{results}: no summary markers ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(results, f"{head}{BEGIN}\n{table}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, default=Path("bench/out/all"))
    parser.add_argument("--write", type=Path, help="replace the summary between the markers of this file")
    args = parser.parse_args()
    table = summary(args.outputs, previous_rows(args.write))
    print(table)
    if args.write:
        write_into(args.write, table)


if __name__ == "__main__":
    main()
