"""Disk used by a finished default IMDB run (issue 10, item 5): ``train.keep_checkpoints=all``
and the default ``best``, side by side in one run (the same training twice, differing only in
what is kept).

    python bench/run_size.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v

Prints, per setting, the bytes of each file group (checkpoints by name, tb/, predictions/, the
rest) and the total, against the target: a finished default IMDB run <= 15 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_MB = 15.0


def sizes(run_dir: Path) -> dict[str, int]:
    groups: dict[str, int] = {}
    for path in run_dir.rglob("*"):
        if path.is_file():
            top = path.relative_to(run_dir).parts[0]
            key = f"checkpoints/{path.name}" if top == "checkpoints" else top if path.parent != run_dir else "other"
            groups[key] = groups.get(key, 0) + path.stat().st_size
    return dict(sorted(groups.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--w2v", default="../shared/data/imdb-w2v")
    parser.add_argument("--out", default=None, help="where the two runs go (default: a temp dir)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="run-size-"))
    totals = {}
    for keep in ("all", "best"):
        run_dir = root / f"keep-{keep}"
        subprocess.run([sys.executable, "-m", "clf", "train", "data=imdb", f"data.dir={Path(args.data).resolve()}",
                        "embeddings=word2vec", f"embeddings.dir={Path(args.w2v).resolve()}", "train.progress=none",
                        f"train.keep_checkpoints={keep}", f"run_dir={run_dir}"], check=True)
        groups = sizes(run_dir)
        totals[keep] = sum(groups.values())
        print(f"\ntrain.keep_checkpoints={keep}: {run_dir}")
        for name, size in groups.items():
            print(f"  {name:<28} {size / 1e6:9.3f} MB")
        print(f"  {'total':<28} {totals[keep] / 1e6:9.3f} MB")
    best = totals["best"] / 1e6
    print(f"\nfinished default IMDB run: {best:.2f} MB with keep_checkpoints=best (target <= {TARGET_MB:.0f} MB: "
          f"{'met' if best <= TARGET_MB else 'NOT met'}); {totals['all'] / 1e6:.2f} MB with all "
          f"({totals['all'] / totals['best']:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
