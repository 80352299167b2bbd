"""``clf w2v [--cfg] [overrides...]``: pre-train word2vec vectors on a data source's text.
``clf w2v import FILE --format F --out DIR [--vocab-from SOURCE] [overrides...]``: convert
published vectors. Both write the homework's artifacts, which ``embeddings.dir=`` accepts."""

from __future__ import annotations

import argparse
from pathlib import Path

from clf.config.compose import to_yaml
from clf.errors import ClfError
from clf.stop import StopRequest
from clf.w2v.config import compose_w2v

USAGE = """clf w2v [-h] [--cfg] [overrides ...]
       clf w2v import FILE --format {word2vec-text,word2vec-bin,glove} --out DIR [--vocab-from SOURCE]
                          [--limit N] [overrides ...]"""
EPILOG = """examples:
  clf w2v data=imdb data.dir=../shared/data/imdb out=vectors/imdb     # train + unlabeled text
  clf w2v data=csv data.train=sentiment.train.csv out=hw2 vector_size=100 epochs=10
  clf w2v data=imdb data.dir=../shared/data/imdb out=v deterministic=true   # bit-for-bit repeatable
  clf w2v --cfg data=imdb data.dir=DIR out=v                          # print the composed config

  clf w2v import GoogleNews-vectors-negative300.bin.gz --format word2vec-bin --out gnews \\
          --vocab-from imdb data.dir=../shared/data/imdb min_count=1
  clf w2v import glove.6B.100d.txt --format glove --out glove100 \\
          --vocab-from imdb data.dir=../shared/data/imdb data.tokenizer.lowercase=true

then: clf train embeddings=word2vec embeddings.dir=vectors/imdb ...

The text is tokenized as the classifier tokenizes it (data.tokenizer) through the same token
cache; only the train and unlabeled splits are read (splits=), never dev or test. out= is
replaced as a whole when the job ends, never left half-written; an out= that already holds
the output of the same config and text is kept as it is (delete it to train again).
Exit status: 0 done, 2 bad input or config, 130 interrupted (SIGINT, SIGTERM or SIGUSR2)."""


def parse_train(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf w2v", description=__doc__, epilog=EPILOG, usage=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. out=DIR data=imdb vector_size=100")
    return parser.parse_intermixed_args(argv)


def parse_import(argv: list[str]) -> argparse.Namespace:
    from clf.w2v.importers import FORMATS

    parser = argparse.ArgumentParser(prog="clf w2v import", epilog=EPILOG,
                                     description="Convert published word vectors into the homework's directory.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="the vectors (gzip-compressed or not)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="layout of FILE")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--vocab-from", metavar="SOURCE", choices=("demo", "csv", "imdb"),
                        help="keep only words of this data source's vocabulary (its train+unlabeled text, "
                             "min_count=); configure it with data.* overrides")
    parser.add_argument("--limit", type=int, help="read only the first N entries (files list frequent words first)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/w2v.yaml (data.*, min_count, probes)")
    args = parser.parse_intermixed_args(argv)
    if args.limit is not None and args.limit <= 0:
        raise ClfError(f"--limit {args.limit} must be positive")
    return args


def main(argv: list[str]) -> int:
    if argv and argv[0] == "import":
        args = parse_import(argv[1:])
        cfg = compose_w2v(([f"data={args.vocab_from}"] if args.vocab_from else []) + args.overrides)
        from clf.w2v.convert import run_import

        with StopRequest().raising():  # clf.stop: temp files are removed on the way out
            run_import(args.file, args.format, args.out, cfg, args.vocab_from is not None, args.limit)
        return 0
    args = parse_train(argv)
    cfg = compose_w2v(args.overrides)
    if args.cfg:
        print(to_yaml(cfg), end="")
        return 0
    from clf.w2v.stage import run

    with StopRequest().raising():  # clf.stop: temp files are removed on the way out
        run(cfg)
    return 0
