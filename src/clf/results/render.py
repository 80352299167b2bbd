"""Tables as text: Markdown (aligned, so it also reads well on a terminal) and LaTeX."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def format_value(value: Any) -> str:
    """A config value as a short cell: ``null``, ``true``, ``0.001``, ``4``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):g}"
    return str(value)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _escape_cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A pipe table with padded columns; ``right[i]`` right-aligns column i (numbers)."""
    right = list(right) if right is not None else [False] * len(headers)
    cells = [[_escape_cell(str(c)) for c in row] for row in [list(headers), *rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text).replace("±", r"$\pm$")


def latex_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A ``tabular`` with booktabs rules (``\\usepackage{booktabs}``)."""
    right = list(right) if right is not None else [False] * len(headers)
    spec = "".join("r" if r else "l" for r in right)
    body = [" & ".join(latex_escape(str(c)) for c in row) + r" \\" for row in rows]
    head = " & ".join(latex_escape(h) for h in headers) + r" \\"
    return "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}"]) + "\n"
