"""``clf explain RUN_DIR "text"`` or ``clf explain RUN_DIR --split dev``: what the attention heads do."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  clf explain runs/h4 "a surprisingly moving film"         # label, probability, attention.png
  clf explain runs/h4 "..." --out figs/moving.png --max-words 60
  echo "text from a pipe" | clf explain runs/h4 -
  clf explain runs/h4 --split dev --top 20 --docs 5 --out results/h4-heads.md

With a text: prints the predicted label and P(label = 1), each head's top tokens, and writes
a heatmap of the attention (tokens across, one row per head), as the homework's
visualize_attention draws it. With --split: per head, the token types that receive the most
attention mass over the split's documents, and the documents on which the heads disagree most
(mean total variation distance between the heads' attention)."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf explain", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory written by clf train")
    parser.add_argument("text", nargs="?", help="the text to explain ('-' reads standard input)")
    parser.add_argument("--split", help="analyse the heads over this split of the run's data (train, dev, test)")
    parser.add_argument("--top", type=int, default=20, help="token types per head (default 20)")
    parser.add_argument("--docs", type=int, default=3, help="documents where the heads disagree (default 3)")
    parser.add_argument("--out", type=Path,
                        help="text: the heatmap PNG (default attention.png); --split: also write the tables here")
    parser.add_argument("--max-words", type=int, default=120, help="heatmap: first N tokens at most (default 120)")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, previous, or a .pt path")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    args = parser.parse_args(argv)
    if (args.text is None) == (args.split is None):
        parser.error("give either a text or --split NAME")
    for name in ("top", "docs", "max_words"):
        if getattr(args, name) < (0 if name == "docs" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small")
    return args


def explain_text(run, text: str, out: Path, max_words: int) -> None:
    from clf.analysis.heatmap import attention_figure
    from clf.errors import ClfError
    from clf.results.plots import save_png
    from clf.results.render import markdown_table

    tokens, weights, probability = run.attention(text)
    if not tokens:
        raise ClfError(f"the text has no tokens for the run's tokenizer (pattern {run.tokenizer.pattern!r})")
    print(f"label {int(probability >= 0.5)}  P(label=1) = {probability:.4f}  "
          f"({len(tokens)} tokens, {weights.shape[1]} heads, {run.path.name}, step {run.step})")
    rows = []
    for h in range(weights.shape[1]):
        order = weights[:, h].argsort()[::-1][:5]
        rows.append([str(h), ", ".join(f"{tokens[i]} {weights[i, h]:.2f}" for i in order)])
    print(markdown_table(["head", "top tokens (weight)"], rows))
    if len(tokens) > max_words:
        print(f"heatmap: the first {max_words} of {len(tokens)} tokens (--max-words)", file=sys.stderr)
    path = save_png(attention_figure(tokens[:max_words], weights[:max_words]), out)
    print(f"wrote {path}", file=sys.stderr)


def explain_split(run, split_name: str, top: int, docs: int, out: Path | None) -> None:
    from clf.analysis.heads import analyze_split, disagreement_table, mass_table
    from clf.atomic import atomic_write_text
    from clf.results.render import markdown_table

    report = analyze_split(run, run.split(split_name), top=top, documents=docs)
    lines = [f"## Attention heads of {run.path.name} over {split_name} ({report.documents} documents)", "",
             f"Top {top} token types per head by share of the head's attention mass:", "",
             markdown_table(*mass_table(report)), ""]
    if report.disagreements:
        lines += ["Documents where the heads disagree most (mean total variation distance between heads; "
                  "each head's top tokens in the document):", "", markdown_table(*disagreement_table(report)), ""]
    text = "\n".join(lines)
    print(text)
    if out is not None:
        print(f"wrote {atomic_write_text(out, text)}", file=sys.stderr)


def main(argv: list[str]) -> int:
    args = parse(argv)
    from clf.api import load_run

    run = load_run(args.run_dir, checkpoint=args.checkpoint, device=args.device)
    if args.split is not None:
        explain_split(run, args.split, args.top, args.docs, args.out)
    else:
        text = sys.stdin.read() if args.text == "-" else args.text
        explain_text(run, text, args.out or Path("attention.png"), args.max_words)
    return 0
