"""clf: attention-based document classifiers, trained resumably on a laptop or on Slurm."""

import os as _os

__version__ = "0.1.0"

# torch's CPU threads (OpenMP) meet at the end of every parallel region, and a training step has
# many short ones. By default a thread that waits spins first; when another process holds one of
# the cores (a laptop's other programs, a second run, anything at any priority) the spinning thread
# waits for one that is not running, and each region costs a scheduler time slice: training ran
# 5-25x slower here beside one busy nice-19 process (bench/threads_bench.py, bench/RESULTS.md).
# Waiting threads that sleep at once avoid that. OpenMP reads this when torch loads it, so it is
# set before anything imports torch; a user's own OMP_WAIT_POLICY wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
