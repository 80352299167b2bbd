"""Where a bench figure was measured: the commit (``+dirty`` when the checkout's code differs from
it) and the date, printed beside each figure (issue 21: every figure states its commit)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ("src", "conf", "bench")   # what a figure depends on


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def provenance() -> dict[str, str]:
    """``{"commit": "abc1234[+dirty]", "date": "YYYY-MM-DD HH:MM"}`` of this checkout, now."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE)
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    return {"commit": commit + ("+dirty" if dirty else ""), "date": time.strftime("%Y-%m-%d %H:%M")}


if __name__ == "__main__":
    where = provenance()
    print(where["commit"], where["date"])
