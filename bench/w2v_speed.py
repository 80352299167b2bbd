"""word2vec stage speed (issue 3): bare gensim and `clf w2v`, back to back, in one run.

bare gensim: ``Word2Vec(sentences, sg=1, ...)`` on the train + unlabeled text already tokenized
in memory (the homework tokenizer; tokenizing is not timed): gensim's vocabulary scan and
training. ours: the ``clf w2v`` command as a subprocess, start to end (interpreter start,
imports, CSV reading and tokenizing or the token cache, training, writing the directory):
"cold" with an empty token cache, "warm" with the cache the cold run filled. Odd rounds run
bare, cold, warm; even rounds cold, warm, bare (so a drift in the machine's load does not
favour one side); ratios are ours / bare of the same round. Each arm reports wall-clock
seconds and CPU seconds (user + system, all threads): on a machine shared with other jobs the
CPU seconds vary much less than the wall clock. Optionally one ``deterministic=true`` run (one
worker) per round, for its speed cost.

    python bench/w2v_speed.py --data ../shared/data/imdb --rounds 2
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {"vector_size": 50, "window": 5, "min_count": 5, "negative": 5, "sample": 1e-3, "seed": 1}


def tokenized(data: Path) -> list[list[str]]:
    from clf.data.records import read_records
    from clf.data.tokenizer import Tokenizer

    tokenize = Tokenizer()
    sentences = []
    for split, labels in (("train", True), ("unlabeled", False)):
        records = read_records(data / f"{split}.csv.gz", id_column="inst_id", text_column="text",
                               label_column="label", require_labels=labels)
        sentences += [tokenize(text) for text in records.texts]
    return sentences


Timing = tuple[float, float]          # (wall seconds, CPU seconds)


def bare(sentences: list[list[str]], epochs: int, workers: int) -> Timing:
    from gensim.models import Word2Vec

    wall, cpu = time.perf_counter(), time.process_time()
    Word2Vec(sentences, sg=1, hs=0, epochs=epochs, workers=workers, **SETTINGS)
    return time.perf_counter() - wall, time.process_time() - cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(data: Path, out: Path, cache: Path, epochs: int, workers: int, *extra: str) -> Timing:
    args = [sys.executable, "-m", "clf", "w2v", "data=imdb", f"data.dir={data}", f"out={out}",
            f"epochs={epochs}", f"workers={workers}", *(f"{k}={v}" for k, v in SETTINGS.items()), *extra]
    wall, cpu = time.perf_counter(), children_cpu()
    subprocess.run(args, check=True, env=dict(os.environ, CLF_CACHE_DIR=str(cache)), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - wall, children_cpu() - cpu


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deterministic", action="store_true", help="also time deterministic=true each round")
    args = parser.parse_args()
    data = args.data.resolve()
    sentences = tokenized(data)
    print(f"corpus: {len(sentences)} docs, {sum(map(len, sentences))} tokens; dim {SETTINGS['vector_size']}, "
          f"{args.epochs} epochs, {args.workers} workers; {os.cpu_count()} CPUs", flush=True)
    names = {"bare": "bare gensim", "cold": "clf w2v (cold cache)", "warm": "clf w2v (warm cache)",
             "det": "clf w2v deterministic"}
    rows: list[dict[str, Timing]] = []
    with tempfile.TemporaryDirectory(prefix="w2v-speed-") as tmp:
        for r in range(args.rounds):
            cache, row = Path(tmp) / f"cache{r}", {}
            arms = {
                "bare": lambda: bare(sentences, args.epochs, args.workers),
                "cold": lambda: ours(data, Path(tmp) / f"cold{r}", cache, args.epochs, args.workers),
                "warm": lambda: ours(data, Path(tmp) / f"warm{r}", cache, args.epochs, args.workers),
            }
            if args.deterministic:
                arms["det"] = lambda: ours(data, Path(tmp) / f"det{r}", cache, args.epochs, args.workers,
                                           "deterministic=true")
            order = list(arms) if r % 2 == 0 else [k for k in arms if k != "bare"] + ["bare"]
            print(f"round {r + 1}: load average {load()}", flush=True)
            for key in order:
                row[key] = arms[key]()
                print(f"  {names[key]:24s} {row[key][0]:7.1f} s wall {row[key][1]:7.1f} s CPU  "
                      f"(load {load()})", flush=True)
            for key in order:
                if key != "bare":
                    print(f"  {names[key]:24s} / bare: wall {row[key][0] / row['bare'][0]:.3f}  "
                          f"CPU {row[key][1] / row['bare'][1]:.3f}")
            rows.append(row)
    print(f"\nmedians over {len(rows)} round(s):")
    for key, name in names.items():
        if key in rows[0]:
            wall = statistics.median(row[key][0] for row in rows)
            cpu = statistics.median(row[key][1] for row in rows)
            ratio_wall = statistics.median(row[key][0] / row["bare"][0] for row in rows)
            ratio_cpu = statistics.median(row[key][1] / row["bare"][1] for row in rows)
            print(f"  {name:24s} {wall:7.1f} s wall {cpu:7.1f} s CPU   ours/bare: wall {ratio_wall:.3f} "
                  f"CPU {ratio_cpu:.3f}")
    if "det" in rows[0]:
        print(f"  deterministic / warm: wall {statistics.median(r['det'][0] / r['warm'][0] for r in rows):.2f}  "
              f"CPU {statistics.median(r['det'][1] / r['warm'][1] for r in rows):.2f}")

if __name__ == "__main__":
    main()
