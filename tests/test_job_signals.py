"""A job whose run has ended survives Slurm's USR2 warning arriving while Python shuts down.

Python restores SIG_DFL at exit for the signals it handled, so a warning that came in the last
second of a job killed the finished process (exit 140) and Slurm recorded a completed run's job
as FAILED (seen in test_slurm's time-limit scenario). The run's work is stubbed here; the real
jobs are in test_slurm.py and test_greatlakes.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    from clf.slurm import job

    job._command = lambda spec, stop: ("completed", None)  # the run's work, done
    spec = job.RunSpec(sweep_dir=sys.argv[1], name="run", run_dir=sys.argv[1] + "/run", submission=0,
                       kind="command", argv=("noop",))
    assert job.run_job(spec)["status"] == "completed"

    class SlowShutdown:
        def __del__(self):
            time.sleep(1.5)  # the warning arrives while the interpreter is finalizing

    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -USR2 {os.getpid()}"])
    slow = SlowShutdown()
""")


def test_a_late_usr2_does_not_kill_a_finished_job(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"reason": "completed"' in (tmp_path / "run" / "attempts.jsonl").read_text()
