"""Do our word2vec vectors help the classifier? (issue 3)

Trains our vectors on IMDB train + unlabeled (``clf w2v``, gensim's defaults: dim 50, window 5,
min_count 5, negative 5, 5 epochs), then the classifier with the same settings in every arm,
3 seeds each: our vectors frozen / trained, the shared reference vectors (imdb-w2v, made with
gensim defaults) frozen / trained, and random initialisation (trained). Prints test F1 as
mean ± std (sample std over seeds) per arm, and writes them to OUT/results.json. Finished
runs in --out are reused; --vectors DIR uses vectors made earlier instead of training them.

    python bench/w2v_quality.py --data ../shared/data/imdb --reference ../shared/data/imdb-w2v
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# the classifier's settings, the same in every arm (stated in RESULTS)
CLASSIFIER = ["train.epochs=2", "train.batch_size=128", "optim.lr=5e-3", "model.num_heads=4",
              "train.eval_every=50", "train.progress=none"]


def run(args: list[str], log: Path) -> None:
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-m", "clf", *args], check=True, stdout=f, stderr=subprocess.STDOUT)


def arms(ours: Path, reference: Path) -> dict[str, list[str]]:
    return {
        "ours, frozen": ["embeddings=word2vec", f"embeddings.dir={ours}", "embeddings.freeze=true"],
        "ours, trained": ["embeddings=word2vec", f"embeddings.dir={ours}", "embeddings.freeze=false"],
        "imdb-w2v, frozen": ["embeddings=word2vec", f"embeddings.dir={reference}", "embeddings.freeze=true"],
        "imdb-w2v, trained": ["embeddings=word2vec", f"embeddings.dir={reference}", "embeddings.freeze=false"],
        "random init, trained": ["embeddings=random", "embeddings.dim=50"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb"))
    parser.add_argument("--reference", type=Path, default=Path("../shared/data/imdb-w2v"))
    parser.add_argument("--out", type=Path, default=Path("bench/out/w2v-quality"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vectors", type=Path, help="our vectors, made earlier (default: train them in OUT)")
    parser.add_argument("--device", default="cpu", help="the classifier's device= (cpu, cuda, auto)")
    parser.add_argument("--arms", nargs="+", help="run only the arms whose names start with one of these")
    args = parser.parse_args()
    data, out = args.data.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    vectors = args.vectors.resolve() if args.vectors else out / "vectors"
    if not args.vectors:
        start = time.perf_counter()
        run(["w2v", "data=imdb", f"data.dir={data}", f"out={vectors}", f"workers={args.workers}"], out / "w2v.log")
        print(f"our vectors: {vectors} ({time.perf_counter() - start:.0f} s; kept if up to date)", flush=True)
        print((vectors / "neighbours.txt").read_text(), flush=True)
    results: dict[str, list[float]] = {}
    for name, overrides in arms(vectors, args.reference.resolve()).items():
        if args.arms and not name.startswith(tuple(args.arms)):
            continue
        for seed in args.seeds:
            run_dir = out / "runs" / f"{name.replace(', ', '-').replace(' ', '_')}-seed{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            run(["train", "data=imdb", f"data.dir={data}", *overrides, *CLASSIFIER, f"device={args.device}",
                 f"seed={seed}", f"run_dir={run_dir}"], run_dir / "bench.log")
            f1 = json.loads((run_dir / "metrics.json").read_text())["test_f1"]
            results.setdefault(name, []).append(f1)
            print(f"  {name:22s} seed {seed}: test F1 {f1:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    (out / "results.json").write_text(json.dumps({"classifier": CLASSIFIER + [f"device={args.device}"],
                                                   "seeds": args.seeds, "test_f1": results}, indent=2))
    print(f"\nclassifier: {' '.join(CLASSIFIER)} device={args.device}; seeds {args.seeds}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"| {'arm':22s} | test F1 (mean ± std) | seeds |\n| --- | --- | --- |")
    for name, f1s in results.items():
        std = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        print(f"| {name:22s} | {statistics.mean(f1s):.4f} ± {std:.4f} | {', '.join(f'{x:.4f}' for x in f1s)} |")
    for mode in ("frozen", "trained"):
        if f"ours, {mode}" not in results or f"imdb-w2v, {mode}" not in results:
            continue
        ours, ref = results[f"ours, {mode}"], results[f"imdb-w2v, {mode}"]
        std = statistics.stdev(ref) if len(ref) > 1 else 0.0
        verdict = "yes" if statistics.mean(ours) >= statistics.mean(ref) - std else "NO"
        print(f"ours >= imdb-w2v - 1 std ({mode}): {verdict}")


if __name__ == "__main__":
    main()
