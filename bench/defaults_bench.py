"""The defaults' cost (issue 21): quality against training seconds, disk and RSS for candidate
default configurations, side by side with issue 12's defaults in one bench run.

Every candidate is a whole ``clf train`` process on IMDB (warm token cache), seeds alternating
across candidates so that all see the same load. Per run: process wall time, ``train_seconds``,
peak RSS (``wait4``), dev and test F1, and the finished run directory's size (``du`` blocks, as
``du -sm`` counts them, and apparent bytes). The table gives medians and means over seeds and
each candidate's training time as a ratio of issue 12's defaults' (``issue12``).

Candidates (``CANDIDATES``): ``shipped`` is ``clf train`` with no overrides (what the checkout
ships); ``issue12`` pins issue 12's defaults (8 heads, 200,000 bigrams, full-precision best.pt);
``previous`` is the shape before them (4 heads, case-kept words, no bigrams, on case-kept vectors);
the others vary one knob or a few. ``--candidates`` picks some.

    nice -n 5 python bench/defaults_bench.py --w2v LOWERCASED_VECTORS --seeds 0 1 2 --candidates shipped issue12 previous

``--w2v`` are vectors trained by ``clf w2v`` with its defaults (lowercased); ``--cased-w2v`` the
homework's case-kept ones (``previous``). Writes ``OUT/runs.jsonl`` (one line per run) and
``OUT/summary.json`` (what bench/RESULTS.md's summary is made from, ``bench/summary.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peak_rss import run_measured  # noqa: E402
from provenance import provenance  # noqa: E402

# issue 12's budget: 3 epochs or 900 steps, whichever is more (IMDB: 939 steps at batch 64)
BUDGET12 = ["train.batch_size=64", "optim.lr=3e-3", "train.min_epochs=3", "train.min_steps=900",
            "train.min_steps_tokens=null"]
ISSUE12 = ["model.num_heads=8", "data.bigram_max_size=200000", "data.bigram_min_count=3", "train.eval_every=50",
           "train.best_precision=fp32", *BUDGET12]
# name -> (overrides, which vectors: "lc" (clf w2v's lowercased defaults) or "cased" (the homework's))
CANDIDATES: dict[str, tuple[list[str], str]] = {
    "shipped": ([], "lc"),
    "shipped-fp32": (["train.best_precision=fp32"], "lc"),   # the same training, best.pt in full precision
    "issue12": (ISSUE12, "lc"),
    "previous": (["data.tokenizer.lowercase=false", "data.tokenizer.ngrams=1", "model.num_heads=4",
                  "train.best_precision=fp32", *BUDGET12], "cased"),
    "h8-b50k": (["data.bigram_max_size=50000"], "lc"),
    "h4-b50k": (["model.num_heads=4", "data.bigram_max_size=50000"], "lc"),
    "h4-b25k": (["model.num_heads=4", "data.bigram_max_size=25000"], "lc"),
    "h4-b100k": (["model.num_heads=4", "data.bigram_max_size=100000"], "lc"),
    "h4-b200k": (["model.num_heads=4"], "lc"),
    "h4-b50k-e2": (["model.num_heads=4", "data.bigram_max_size=50000", "train.epochs=2"], "lc"),
    "h4-b50k-mc5": (["model.num_heads=4", "data.bigram_max_size=50000", "data.bigram_min_count=5"], "lc"),
    "h4-b50k-ev100": (["model.num_heads=4", "data.bigram_max_size=50000", "train.eval_every=100"], "lc"),
    # batch 128 and 256: min_steps scaled so that a small set sees as many documents as at 64 and 900
    "h8-b50k-bs128": (["data.bigram_max_size=50000", "train.batch_size=128", "optim.lr=6e-3", "train.min_steps=450"],
                      "lc"),
    "h8-b50k-bs128-lr3": (["data.bigram_max_size=50000", "train.batch_size=128", "train.min_steps=450"], "lc"),
    "h8-b25k-bs128": (["data.bigram_max_size=25000", "train.batch_size=128", "optim.lr=6e-3", "train.min_steps=450"],
                      "lc"),
    "h8-b100k-bs128": (["data.bigram_max_size=100000", "train.batch_size=128", "optim.lr=6e-3",
                        "train.min_steps=450"], "lc"),
    "h8-b50k-bs256": (["data.bigram_max_size=50000", "train.batch_size=256", "optim.lr=1e-2", "train.min_steps=225"],
                      "lc"),
    "h8-b50k-bs128-e2": (["data.bigram_max_size=50000", "train.batch_size=128", "optim.lr=6e-3", "train.epochs=2"],
                         "lc"),
    "h8-b50k-bs128-e2-lr8": (["data.bigram_max_size=50000", "train.batch_size=128", "optim.lr=8e-3",
                              "train.epochs=2"], "lc"),
    "h8-b50k-bs256-e2": (["data.bigram_max_size=50000", "train.batch_size=256", "optim.lr=1e-2", "train.epochs=2"],
                         "lc"),
    "h6-b50k-bs128": (["model.num_heads=6", "data.bigram_max_size=50000", "train.batch_size=128", "optim.lr=6e-3",
                       "train.min_steps=450"], "lc"),
    "h4-b50k-bs128": (["model.num_heads=4", "data.bigram_max_size=50000", "train.batch_size=128", "optim.lr=6e-3",
                       "train.min_steps=450"], "lc"),
}


def disk(run_dir: Path) -> tuple[float, float]:
    """(MB of the blocks ``du`` counts, MB of apparent size) of a directory's files."""
    blocks = apparent = 0
    seen: set[int] = set()
    for path in run_dir.rglob("*"):
        st = path.lstat()
        if st.st_ino in seen:
            continue
        seen.add(st.st_ino)
        blocks += st.st_blocks * 512
        apparent += st.st_size if path.is_file() else 0
    return blocks / 1e6, apparent / 1e6


def one_run(args: argparse.Namespace, name: str, seed: int, run_dir: Path) -> dict:
    """One ``clf train`` process of a candidate: its figures."""
    extra, vectors = CANDIDATES[name]
    w2v = args.w2v if vectors == "lc" else args.cased_w2v
    cmd = [sys.executable, "-m", "clf", "train", "data=imdb", f"data.dir={args.data}", "embeddings=word2vec",
           f"embeddings.dir={w2v}", "train.progress=none", "device=cpu", f"seed={seed}", f"run_dir={run_dir}", *extra]
    status, peak_rss_mb, wall, cpu_s = run_measured(cmd, run_dir.parent / f"{run_dir.name}.log")
    if status != 0:
        raise SystemExit(f"{name} seed {seed} failed (status {status}); log: {run_dir.parent / run_dir.name}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    du_mb, apparent_mb = disk(run_dir)
    return {"candidate": name, "seed": seed, "overrides": extra, "vectors": vectors, "wall_s": wall,
            "train_s": metrics["train_seconds"], "ratio": wall / metrics["train_seconds"],
            "peak_rss_mb": peak_rss_mb, "cpu_s": cpu_s, "dev_f1": metrics["dev_f1"], "test_f1": metrics["test_f1"],
            "test_accuracy": metrics["test_accuracy"], "best_step": metrics["best_step"], "steps": metrics["steps"],
            "du_mb": du_mb, "apparent_mb": apparent_mb, "load": os.getloadavg()[0]}


def keep_predictions(run_dir: Path, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "predictions" / "test.proba.csv", to)


def precision_gap(out: Path, seeds: list[int], data: str) -> dict | None:
    """``shipped`` (fp16 best.pt) against ``shipped-fp32`` (the same runs, best.pt in full
    precision) on IMDB test: the largest probability difference, labels flipped, F1 difference."""
    import numpy as np
    import pandas as pd

    from clf.metrics import binary_metrics

    files = [(out / "predictions" / f"shipped-seed{s}.csv", out / "predictions" / f"shipped-fp32-seed{s}.csv")
             for s in seeds]
    files = [(a, b) for a, b in files if a.exists() and b.exists()]
    if not files:
        return None
    labels = pd.read_csv(Path(data) / "test.csv.gz")["label"].to_numpy()
    gaps, flips, f1_gaps = [], [], []
    for half, full in files:
        p16, p32 = (pd.read_csv(f)["probability"].to_numpy() for f in (half, full))
        gaps.append(float(np.abs(p16 - p32).max()))
        flips.append(int(((p16 >= 0.5) != (p32 >= 0.5)).sum()))
        f1_gaps.append(abs(binary_metrics(labels, p16 >= 0.5)["f1"] - binary_metrics(labels, p32 >= 0.5)["f1"]))
    return {"max_probability_gap": max(gaps), "labels_flipped": flips, "max_f1_gap": max(f1_gaps),
            "documents": len(labels), "runs": len(files)}


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per candidate: medians of the costs, mean and std of the F1s over seeds."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["candidate"] for r in runs):
        mine = [r for r in runs if r["candidate"] == name]

        def med(key: str) -> float:
            return statistics.median(r[key] for r in mine)

        def mean_std(key: str) -> tuple[float, float]:
            values = [r[key] for r in mine]
            return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

        out[name] = {"seeds": [r["seed"] for r in mine], "overrides": mine[0]["overrides"], "train_s": med("train_s"),
                     "wall_s": med("wall_s"), "cpu_s": med("cpu_s"), "ratio": med("ratio"), "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
                     "du_mb": med("du_mb"), "apparent_mb": med("apparent_mb"), "test_f1": mean_std("test_f1"),
                     "dev_f1": mean_std("dev_f1"), "test_accuracy": mean_std("test_accuracy"),
                     "best_steps": sorted(r["best_step"] for r in mine), "steps": mine[0]["steps"]}
    if "issue12" in out:
        base = out["issue12"]["train_s"]
        for figures in out.values():
            figures["train_vs_issue12"] = figures["train_s"] / base
    return out


def table(summary: dict[str, dict]) -> str:
    lines = ["| candidate | test F1 | dev F1 | test acc. | train s | x issue12 | wall / train | du MB (apparent) | "
             "peak RSS MB | best steps / steps |", "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, f in summary.items():
        lines.append(f"| {name} | {f['test_f1'][0]:.4f} ± {f['test_f1'][1]:.4f} | {f['dev_f1'][0]:.4f} | "
                     f"{f['test_accuracy'][0] * 100:.2f}% | {f['train_s']:.2f} | {f.get('train_vs_issue12', float('nan')):.2f} | "
                     f"{f['ratio']:.2f} | {f['du_mb']:.1f} ({f['apparent_mb']:.1f}) | {f['peak_rss_mb']:.0f} | "
                     f"{', '.join(map(str, f['best_steps']))} / {f['steps']} |")
    return "\n".join(lines)


WARM = """
import sys
from clf.config.compose import compose
from clf.data.dataset import load_dataset
from clf.embeddings import load_word2vec
cfg = compose(sys.argv[2:])
load_dataset(cfg.data, load_word2vec(sys.argv[1])[0])
"""


def warm_caches(args: argparse.Namespace, names: list[str]) -> None:
    """Token ids and bigram vocabularies of every candidate into the cache, before any run is timed;
    in child processes, so that this one stays small: a child's peak RSS (``wait4``) counts the
    pages of the process it was forked from."""
    for name in names:
        extra, vectors = CANDIDATES[name]
        w2v = args.w2v if vectors == "lc" else args.cased_w2v
        subprocess.run([sys.executable, "-c", WARM, w2v, "data=imdb", f"data.dir={args.data}", "embeddings=word2vec",
                        f"embeddings.dir={w2v}", *extra], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--w2v", required=True, help="lowercased IMDB vectors (clf w2v data=imdb, its defaults)")
    parser.add_argument("--cased-w2v", default="../shared/data/imdb-w2v", help="the homework's case-kept vectors")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--first-seed-only", nargs="*", default=[], metavar="CANDIDATE",
                        help="candidates run with the first seed only (references whose spread is not a goal)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/defaults"))
    parser.add_argument("--keep", action="store_true", help="keep the run directories (default: only their logs)")
    args = parser.parse_args()
    args.data, args.w2v, args.cased_w2v = (str(Path(p).resolve()) for p in (args.data, args.w2v, args.cased_w2v))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in args.first_seed_only:
        if name not in args.candidates:
            parser.error(f"--first-seed-only {name}: not among --candidates")
    os.environ.setdefault("CLF_CACHE_DIR", str(out / "cache"))
    where = provenance()
    print(f"defaults bench at {where['commit']} ({where['date']}), load average {os.getloadavg()[0]:.1f}", flush=True)
    warm_caches(args, args.candidates)
    runs: list[dict] = []
    for seed in args.seeds:
        for name in [c for c in args.candidates if seed == args.seeds[0] or c not in args.first_seed_only]:
            # the order given: put first what must be measured if the bench is stopped early
            run_dir = out / "runs" / f"{name}-seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            result = one_run(args, name, seed, run_dir)
            runs.append(result)
            print(f"  {name} seed {seed}: test F1 {result['test_f1']:.4f} dev {result['dev_f1']:.4f}, train "
                  f"{result['train_s']:.2f} s, wall {result['wall_s']:.2f} s, CPU {result['cpu_s']:.1f} s, "
                  f"{result['du_mb']:.1f} MB, RSS {result['peak_rss_mb']:.0f} MB, load {result['load']:.1f}", flush=True)
            keep_predictions(run_dir, out / "predictions" / f"{name}-seed{seed}.csv")
            if not args.keep:
                shutil.rmtree(run_dir)
            with open(out / "runs.jsonl", "a") as f:
                f.write(json.dumps({**result, **where}) + "\n")
            report(runs, where, out, args)   # after each run: a bench stopped early still has its figures


def report(runs: list[dict], where: dict, out: Path, args: argparse.Namespace) -> None:
    """The table of the runs so far, and the JSON line bench/summary.py reads (its last one counts)."""
    seeds = sorted({r["seed"] for r in runs})
    summary, gap = summarise(runs), precision_gap(out, seeds, args.data)
    record = {**where, "seeds": seeds, "candidates": summary, "fp16_best": gap}
    (out / "summary.json").write_text(json.dumps(record, indent=2))
    print(f"\n{where['commit']} {where['date']}, seeds {seeds}, load average now {os.getloadavg()[0]:.1f}\n\n"
          f"{table(summary)}")
    if gap is not None:
        print(f"\nfp16 best.pt against fp32 (shipped vs shipped-fp32, IMDB test, {gap['documents']} documents, "
              f"{gap['runs']} seed(s)): largest probability difference {gap['max_probability_gap']:.2e}, labels "
              f"flipped {gap['labels_flipped']}, largest F1 difference {gap['max_f1_gap']:.2e}")
    print("\nsummary-json: " + json.dumps(record), flush=True)

if __name__ == "__main__":
    main()
