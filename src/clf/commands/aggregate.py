"""``clf aggregate SWEEP_DIR... [--by KEYS] [--out results/NAME]``: one table of a sweep's runs."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from clf.errors import ClfError

EPILOG = """examples:
  clf aggregate sweeps/heads                          # group by every key that varies (not seed)
  clf aggregate sweeps/heads sweeps/lr --by model.num_heads,optim.lr --out results/heads-lr
  clf aggregate sweeps/lr --by lr --latex --no-plots  # a unique suffix names a key
  clf aggregate sweeps/heads --ensemble               # + each group's seeds averaged into one model

Writes NAME.csv (one row per run), NAME.md (the grouped table and the unfinished runs),
NAME.tex with --latex, and PNG plots: NAME.dev_f1.png (dev F1 against step, from TensorBoard)
and NAME.f1_vs_KEY.png for each numeric grouping key. Runs that failed, are still running or
have corrupt files are listed apart; safe to run while jobs write. With --ensemble, each group's
runs are also averaged (mean predicted probability): the table gets the ensemble's dev and test
F1, and NAME.ensemble/<group>/{dev,test}.csv hold its Kaggle files (inst_id,predicted_label)."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf aggregate", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run directories (searched recursively)")
    parser.add_argument("--by", action="append", default=[], metavar="KEYS",
                        help="comma-separated config keys to group by (default: every key that varies, except seed)")
    parser.add_argument("--out", type=Path, metavar="results/NAME",
                        help="output path without suffix (default: results/<name of the first SWEEP_DIR>)")
    parser.add_argument("--latex", action="store_true", help="also write NAME.tex (booktabs tabular)")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    parser.add_argument("--ensemble", action="store_true",
                        help="average each group's runs (seeds) into one ensemble: its F1 and Kaggle files")
    return parser.parse_args(argv)


def default_out(dirs: list[str]) -> Path:
    name = Path(dirs[0]).resolve().name if len(dirs) == 1 else "aggregate"
    return Path("results") / (name or "aggregate")


def _plot_worker(conn: Connection) -> None:
    """Import matplotlib at once, then draw the plots of the aggregate the parent sends (or None)."""
    from clf.results.aggregate import write_plots
    from clf.results import plots  # noqa: F401  (matplotlib, the slow import)

    job = conn.recv()
    if job is None:
        return
    try:
        conn.send(("ok", [str(path) for path in write_plots(*job)]))
    except Exception as exc:  # reported by the parent as one line
        from clf.errors import one_line

        conn.send(("error", one_line(exc)))


class _Plotter:
    """Plots drawn in a forked process that imports matplotlib while this one reads the runs."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_plot_worker, args=(child,), daemon=True)
        self.process.start()

    def start(self, agg, out: Path) -> None:
        self.conn.send((agg, out))

    def finish(self) -> list[str]:
        """Wait for the plots; the paths written."""
        status, payload = self.conn.recv()
        self.process.join()
        if status != "ok":
            raise ClfError(f"plots failed: {payload}")
        return payload

    def cancel(self) -> None:
        self.conn.send(None)
        self.process.join()


def main(argv: list[str]) -> int:
    args = parse(argv)
    plotter = _Plotter() if args.plots else None
    try:
        from clf.results.aggregate import aggregate, report, write_tables

        by = [key.strip() for value in args.by for key in value.split(",") if key.strip()]
        agg = aggregate(args.dirs, by, ensemble=args.ensemble)
    except BaseException:
        if plotter is not None:
            plotter.cancel()
        raise
    out = args.out or default_out(args.dirs)
    if plotter is not None:
        plotter.start(agg, out)
    written = [str(path) for path in write_tables(agg, out, latex=args.latex)]
    print(report(agg))
    if plotter is not None:
        written += plotter.finish()
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
