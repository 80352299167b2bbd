"""A command's peak RSS, measured without the bench's own pages.

``ru_maxrss`` of a child (``wait4``) keeps the largest RSS the child had before its ``exec``: the
pages of the process it was forked from. A bench that has loaded IMDB (hundreds of MB) and forks
``clf train`` reports at least its own size for every run. So the command is started by a small
launcher process (a bare interpreter, ~10 MB), which forks it and reports its peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

LAUNCHER = """
import json, os, subprocess, sys
with open(sys.argv[1], "w") as log:
    child = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "peak_rss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run_measured(cmd: list[str], log: Path) -> tuple[int, float, float, float]:
    """(exit status, peak RSS in MB, wall seconds, CPU seconds) of ``cmd``, its output to ``log``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, str(log), *cmd], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    return report["status"], report["peak_rss_mb"], wall, report["cpu_s"]
