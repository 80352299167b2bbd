"""``clf train [--cfg] [overrides...]``: train, or resume, one run on this machine."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from omegaconf import open_dict

from clf.config.compose import compose, to_yaml
from clf.diskfull import LogFileHandler
from clf.names import TRAIN_LOG

EPILOG = """examples:
  clf train                                  # the demo data, default model
  clf train data=csv data.train=sentiment.train.csv data.dev=sentiment.dev.csv \\
            data.test=sentiment.test.csv embeddings=word2vec embeddings.dir=hw2/
  clf train optim.lr=1e-3 model.num_heads=8 run_dir=runs/h8
  clf train --cfg model.num_heads=8          # print the composed config, do nothing

A run_dir that holds checkpoints/last.pt is resumed; a finished one is not retrained.
Exit status: 0 done, 2 bad input or config, 75 stopped by a signal after a checkpoint."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf train", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optim.lr=1e-3 model.num_heads=8")
    return parser.parse_args(argv)


def add_file_log(run_dir: Path) -> logging.Handler:
    from clf.train.lock import check_run_dir

    check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = LogFileHandler(run_dir / TRAIN_LOG, mode="a")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def main(argv: list[str]) -> int:
    args = parse(argv)
    cfg = compose(args.overrides)
    if args.cfg:
        print(to_yaml(cfg), end="")
        return 0
    from clf.train.loop import default_run_dir, train
    from clf.stop import StopRequest

    run_dir = (Path(cfg.run_dir) if cfg.run_dir else default_run_dir()).expanduser().resolve()
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
    add_file_log(run_dir)
    result = train(cfg, run_dir, StopRequest().install())
    return result.exit_code
