"""One slot of a worker: ``python -m clf.slurm.slot RESULT_FD``, started by ``clf.slurm.worker``.

A slot is a process of its own, so that a run that crashes or runs out of memory takes only its
slot down, not the worker and the runs beside it. It trains the runs its worker hands it, one
at a time and in-process (Python, torch and the data are loaded once per slot, as in a packed
task: ``clf.train.reuse``), each with its own record (``clf.slurm.job.run_one``).

Its worker writes one run (a ``RunSpec`` as JSON) per line to the slot's stdin and closes it when
there is no more; the slot answers one JSON line per run on ``RESULT_FD``. A stop signal (USR2 at
the time limit, SIGTERM) stops the current run at a checkpoint; the slot answers and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from clf.slurm import jobfiles
from clf.slurm.job import RunSpec, error_text, run_one, start_task


def _train(spec: RunSpec, stop, info, started: float) -> dict[str, Any]:
    try:
        result = run_one(spec, info, stop, started, requeue=False)
    except Exception as exc:  # recorded failed in its status.json by run_one
        return {"run": spec.name, "status": jobfiles.FAILED, "error": error_text(exc)}
    return {"run": spec.name, "status": result["status"], "signal": result.get("signal")}


def main(argv: list[str]) -> int:
    results = os.fdopen(int(argv[0]), "w", buffering=1)
    stop, info = start_task()
    from clf.train.reuse import reusing_data

    with reusing_data():
        for line in sys.stdin:
            if not line.strip():
                continue
            fields = json.loads(line)
            spec = RunSpec(**{**fields, "argv": tuple(fields.get("argv") or ())})
            started = time.time()
            answer = _train(spec, stop, info, started)
            results.write(json.dumps({**answer, "seconds": round(time.time() - started, 3)}) + "\n")
            if answer["status"] == jobfiles.INTERRUPTED or stop.requested:
                break
    results.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
