"""``clf halving_step SWEEP_DIR RUNG``: successive halving's decision for one rung (clf.slurm.halving).

Not listed among clf's commands: the decision job that ``clf submit ... search=halving`` queues
after each rung runs it; ``clf resubmit SWEEP_DIR --failed`` reruns a failed one (deciding a rung
twice changes nothing)."""

from __future__ import annotations

import argparse


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf halving_step", description=__doc__)
    parser.add_argument("sweep", metavar="SWEEP_DIR", help="a sweep submitted with search=halving")
    parser.add_argument("rung", type=int, help="the rung to decide (1, 2, ...)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    from clf.errors import ClfError
    from clf.slurm.halving import Halving, decide
    from clf.slurm.manifest import Manifest, locked

    with locked(args.sweep):
        manifest = Manifest.load(args.sweep)
        halving = Halving.load(args.sweep)
        if halving is None:
            raise ClfError("not a successive-halving sweep (no halving.json)", args.sweep)
        print(decide(manifest, halving, args.rung), flush=True)
    return 0
