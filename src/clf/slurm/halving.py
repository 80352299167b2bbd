"""Successive halving over a sweep's runs (``clf submit ... search=halving``), driven by small
dependent jobs, so that nothing waits on the login node.

Rung 1 trains every configuration to ``search.min_steps`` (``train.stop_at_step``); each rung's
budget is ``eta`` times the one before, and the last one is ``train.max_steps``, the full budget.
A decision job (a ``clf`` command run of the sweep, ``.halving/rung-K``) waits for the rung's
jobs to end (``afterany``), reads each run's dev F1 at the rung from its ``metrics.json``, keeps
the best ``ceil(n / eta)`` (runs that failed or did not reach the budget are never kept; ties go
to the run listed first in the sweep), records that in ``SWEEP_DIR/halving.json`` under the
manifest's lock, and submits the next rung (those runs, resumed from their checkpoints to the
larger budget) and its own decision job. Every run's LR schedule and data order span the full
budget and rung budgets fall on evaluation steps, so a promoted run continues exactly as an
uninterrupted run would. The last rung's decision names the winner.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from clf.atomic import atomic_write_json
from clf.errors import ClfError
from clf.names import COMPLETED, HALVING_JOBS, HALVING_RECORD, METRICS, STOPPED
from clf.slurm import jobfiles
from clf.slurm.manifest import KIND_COMMAND, Manifest, RunEntry, Submission, now_iso

DECISION_COMMAND = "halving_step"      # clf.commands.halving_step, run by the decision jobs


@dataclass
class Rung:
    """One rung: its budget, its runs, the submission that trains them and, once decided, the
    dev F1 each reached (None: failed or short of the budget) and the runs kept."""

    index: int                               # 1, 2, ...
    budget: int                              # optimizer steps every run of the rung trains to
    runs: list[str]
    submission: int | None = None            # the manifest's submission that trains the rung
    decision: str = ""                       # the decision job's run name
    scores: dict[str, float | None] = field(default_factory=dict)
    kept: list[str] | None = None            # decided: promoted (the last rung: the winner)
    decided: str | None = None               # when


@dataclass
class Halving:
    """``SWEEP_DIR/halving.json``: the search's settings, its rungs, and the winner once decided."""

    eta: int
    min_steps: int
    max_steps: int
    budgets: list[int]
    rungs: list[Rung] = field(default_factory=list)
    winner: str | None = None
    finished: bool = False

    def save(self, sweep_dir: str | Path) -> None:
        atomic_write_json(Path(sweep_dir) / HALVING_RECORD, asdict(self))

    @classmethod
    def load(cls, sweep_dir: str | Path) -> "Halving | None":
        """The sweep's record; None for a sweep that is not a halving search."""
        path = Path(sweep_dir) / HALVING_RECORD
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ClfError(f"{HALVING_RECORD} is unreadable ({exc})", sweep_dir) from None
        data["rungs"] = [Rung(**rung) for rung in data.get("rungs", [])]
        return cls(**data)


def rung_budgets(min_steps: int, eta: int, max_steps: int) -> list[int]:
    """``min_steps``, ``eta`` times that, ... while below ``max_steps``, then ``max_steps``."""
    budgets, budget = [], min_steps
    while budget < max_steps:
        budgets.append(budget)
        budget *= eta
    return budgets + [max_steps]


def keep_count(n: int, eta: int) -> int:
    return math.ceil(n / eta)


def select(scores: Mapping[str, float | None], keep: int, order: Sequence[str]) -> list[str]:
    """The ``keep`` best runs by score (None: never kept), best first; a tie goes to the run that
    comes first in ``order`` (the sweep's order)."""
    position = {name: i for i, name in enumerate(order)}
    ranked = sorted((name for name, score in scores.items() if score is not None),
                    key=lambda name: (-float(scores[name]), position.get(name, len(position)), name))
    return ranked[:keep]


def rung_score(run_dir: Path, budget: int) -> float | None:
    """The run's dev F1 (best so far) if it reached ``budget`` (stopped there) or completed."""
    metrics = jobfiles.read_json(run_dir / METRICS) or {}
    dev_f1 = metrics.get("dev_f1")
    if not isinstance(dev_f1, (int, float)) or isinstance(dev_f1, bool):
        return None
    if metrics.get("status") == COMPLETED or (metrics.get("status") == STOPPED and metrics.get("steps") == budget):
        return float(dev_f1)
    return None


def set_budget(run: RunEntry, budget: int, max_steps: int) -> None:
    """The run's config trains to ``budget`` (the full budget: to its end)."""
    run.config["train"]["stop_at_step"] = budget if budget < max_steps else None


def start(runs: list[RunEntry]) -> Halving | None:
    """For a ``search=halving`` sweep (None otherwise): the search's record, the runs set to stop
    at the first rung's budget (before they are submitted)."""
    settings = {json.dumps([run.config["search"], run.config["train"]["max_steps"]], sort_keys=True) for run in runs}
    if len(settings) > 1:
        raise ClfError("search.* and train.max_steps must be the same for every run of a sweep (submit separate sweeps)")
    search, max_steps = runs[0].config["search"], runs[0].config["train"]["max_steps"]
    if search["kind"] != "halving":
        return None
    halving = Halving(eta=int(search["eta"]), min_steps=int(search["min_steps"]), max_steps=int(max_steps),
                      budgets=rung_budgets(int(search["min_steps"]), int(search["eta"]), int(max_steps)))
    for run in runs:
        set_budget(run, halving.budgets[0], halving.max_steps)
    return halving


def launch_rung(manifest: Manifest, halving: Halving, runs: list[RunEntry], cluster: Any, kind: str,
                code: dict[str, Any] | None, after: dict[str, list[str]] | None = None) -> list[Submission]:
    """Submit a rung's runs (already set to its budget) and its decision job (afterany on them);
    record both in ``halving`` and save it."""
    from clf.slurm import launch

    index = len(halving.rungs) + 1
    decision = RunEntry(name=f"halving-rung-{index}", label=f"successive halving: decide rung {index}",
                        overrides=[], kind=KIND_COMMAND, argv=[DECISION_COMMAND, manifest.sweep_dir, str(index)],
                        run_dir=f"{HALVING_JOBS}/rung-{index}")
    rung = Rung(index, halving.budgets[index - 1], [run.name for run in runs], decision=decision.name)
    halving.rungs.append(rung)
    submissions = [launch.submit(manifest, runs, cluster, kind, after)]
    rung.submission = len(manifest.submissions) - 1
    manifest.runs.append(decision)
    submissions.append(launch.submit(manifest, [decision], cluster, "decision", after_runs=rung.runs))
    for submission in submissions:
        submission.code = code
    manifest.save()
    halving.save(manifest.sweep_dir)
    return submissions


def decide(manifest: Manifest, halving: Halving, index: int) -> str:
    """Decide rung ``index`` (the caller holds the manifest's lock): record the scores and the
    runs kept, then submit the next rung, or name the winner. Deciding a rung twice (a requeued
    or resubmitted decision job) changes nothing. Returns what was done, in words."""
    from clf.slurm import snapshot
    from clf.slurm.profile import cluster_from

    if not 1 <= index <= len(halving.rungs):
        raise ClfError(f"{HALVING_RECORD} has no rung {index}", manifest.sweep_dir)
    rung = halving.rungs[index - 1]
    if rung.kept is not None:
        return f"rung {index} was already decided: kept {', '.join(rung.kept) or 'none'}"
    rung.scores = {name: rung_score(manifest.run_dir(manifest.run(name)), rung.budget) for name in rung.runs}
    last = index == len(halving.budgets)
    rung.kept = select(rung.scores, 1 if last else keep_count(len(rung.runs), halving.eta),
                       [run.name for run in manifest.runs])
    rung.decided = now_iso()
    reached = sum(score is not None for score in rung.scores.values())
    if last or not rung.kept:
        halving.winner, halving.finished = (rung.kept[0] if rung.kept else None), True
        halving.save(manifest.sweep_dir)
        return (f"rung {index}: {reached} of {len(rung.runs)} run(s) reached {rung.budget} steps; "
                + (f"winner {halving.winner}" if halving.winner else "no run left: the search ends"))
    promoted = [manifest.run(name) for name in rung.kept]
    for run in promoted:
        set_budget(run, halving.budgets[index], halving.max_steps)
    code = snapshot.latest(manifest)
    snapshot.use(code)
    launch_rung(manifest, halving, promoted, cluster_from(manifest.cluster), "rung", code)
    return (f"rung {index}: {reached} of {len(rung.runs)} run(s) reached {rung.budget} steps; "
            f"promoted {', '.join(rung.kept)} to {halving.budgets[index]} steps")


def summary(halving: Halving, states: Mapping[str, str]) -> list[str]:
    """Lines for ``clf status``: per rung its budget, runs, their states and the decision."""
    lines = [f"successive halving: eta {halving.eta}, budgets {' / '.join(map(str, halving.budgets))} steps"]
    for rung in halving.rungs:
        head = f"  rung {rung.index}: {rung.budget} steps, {len(rung.runs)} run(s)"
        if rung.kept is None:  # in progress: where its runs stand now
            counts: dict[str, int] = {}
            for name in rung.runs:
                counts[states.get(name, "unknown")] = counts.get(states.get(name, "unknown"), 0) + 1
            decision = "deciding" if states.get(rung.decision) == jobfiles.RUNNING else "not decided yet"
            lines.append(f"{head} ({', '.join(f'{n} {s}' for s, n in counts.items())}); {decision}")
            continue
        reached = sum(score is not None for score in rung.scores.values())
        missed = f", {len(rung.runs) - reached} failed or short of it" if reached < len(rung.runs) else ""
        kept = f"kept {', '.join(rung.kept)}" if rung.kept else "no run reached the budget"
        lines.append(f"{head} ({reached} reached the budget{missed}); {kept}")
    waiting = len(halving.rungs) < len(halving.budgets) and not halving.finished
    if halving.finished:
        lines.append(f"  winner: {halving.winner}" if halving.winner else "  no winner: no run reached the budget")
    elif waiting and halving.rungs:
        lines.append(f"  rungs to come: {' / '.join(map(str, halving.budgets[len(halving.rungs):]))} steps")
    return lines
