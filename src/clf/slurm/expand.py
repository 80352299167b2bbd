"""Expand ``clf submit``'s overrides into runs: Hydra's sweep syntax (``model.num_heads=1,2,4
seed=range(3)``) and a preset's grid (``hydra.sweeper.params`` of ``experiment=NAME``).

Composing is slow (0.1-0.3 s), so it happens once per distinct set of *structural* overrides
(config group choices, ``+``/``~`` overrides); each run's plain ``key=value`` overrides are then
applied to that composition the way Hydra applies them (``OmegaConf.update(..., merge=True)``)
and undone afterwards, and the result is validated. A 100-run grid costs one composition.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from clf.config.compose import check_schema, compose_raw, config_dir, extra_config_dirs, to_container
from clf.config.validate import validate
from clf.errors import ClfError, one_line
from clf.slurm.manifest import RUNS_DIR
from clf.slurm.paths import absolute_config
from clf.slurm.profile import implied_device

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_MAX_NAME = 80


@dataclass
class PlannedRun:
    name: str                 # directory name under SWEEP_DIR/runs/, stable: derived from ``label``
    label: str                # the overrides that vary across the sweep, e.g. "model.num_heads=4 seed=1"
    overrides: list[str]      # every override of the run, in Hydra's syntax
    config: dict[str, Any]    # composed, validated and resolved (run_dir and sweep_dir filled in)


@dataclass
class Plan:
    runs: list[PlannedRun]
    sweep_dir: Path
    name: str
    cluster: dict[str, Any]


def run_name(pairs: list[tuple[str, str]]) -> str:
    """``[("model.num_heads", "4"), ("seed", "1")]`` -> ``model.num_heads=4,seed=1``; characters
    other than letters, digits and ``. _ = , + -`` become ``_``, and a name that had to change
    or is long gets a hash of the exact overrides, so distinct runs never share a directory."""
    raw = ",".join(f"{key}={value}" for key, value in pairs)
    if not raw:
        return "run"
    safe = _UNSAFE.sub("_", raw)
    if safe != raw or len(safe) > _MAX_NAME or safe.startswith("."):
        safe = f"{safe[:_MAX_NAME].lstrip('.')}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return safe


def default_sweep_dir(name: str, now: float | None = None) -> Path:
    return Path("sweeps") / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


class _Composer:
    """Compositions cached by their structural overrides; value overrides applied per run."""

    def __init__(self) -> None:
        self.parser = OverridesParser.create()
        self.conf_dirs = [config_dir(), *extra_config_dirs()]
        self._parsed: dict[str, Override] = {}
        self._groups: dict[str, bool] = {}
        self._bases: dict[tuple[str, ...], tuple[DictConfig, dict[str, str]]] = {}

    def parse(self, overrides: list[str]) -> list[Override]:
        missing = [o for o in overrides if o not in self._parsed]
        if missing:
            try:
                parsed = self.parser.parse_overrides(missing)
            except Exception as exc:
                raise ClfError(f"bad override: {one_line(exc, first_lines=True)}") from None
            self._parsed.update(zip(missing, parsed))
        return [self._parsed[o] for o in overrides]

    def structural(self, override: Override) -> bool:
        key = override.key_or_group
        if override.is_add() or override.is_force_add() or override.is_delete() or override.package is not None:
            return True
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            return True
        if key not in self._groups:
            self._groups[key] = any((d / key).is_dir() for d in self.conf_dirs)
        return self._groups[key]

    def base(self, overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
        """The composition of the structural ones among ``overrides``, and its preset's grid."""
        key = tuple(o for o, p in zip(overrides, self.parse(overrides)) if self.structural(p))
        if key not in self._bases:
            cfg = compose_raw(key, hydra_node=True)
            params = cfg.hydra.sweeper.params
            grid = {str(k): str(v) for k, v in (OmegaConf.to_container(params) if params else {}).items()}
            with open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.set_struct(cfg, True)
            check_schema(cfg)
            self._bases[key] = (cfg, grid)
        return self._bases[key]

    def config(self, overrides: list[str], extra: dict[str, Any]) -> dict[str, Any]:
        """The validated, resolved config of one run (``extra``: more plain values to set)."""
        cfg, _ = self.base(overrides)
        values = [(p.key_or_group, p.value(), o) for o, p in zip(overrides, self.parse(overrides))
                  if not self.structural(p)]
        values += [(key, value, f"{key}={value}") for key, value in extra.items()]
        saved: list[tuple[str, Any]] = []
        try:
            for key, value, text in values:
                old = _current(cfg, key)
                try:
                    OmegaConf.update(cfg, key, value, merge=True)
                except Exception as exc:
                    raise ClfError(f"bad config or override {text}: {one_line(exc, first_lines=True)}") from None
                saved.append((key, old))
            validate(cfg)
            return to_container(cfg)
        finally:
            for key, old in reversed(saved):
                OmegaConf.update(cfg, key, old, merge=False)


def _current(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` as plain data (``???`` when missing), to restore it later."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if isinstance(parent, DictConfig) and leaf in parent and OmegaConf.is_missing(parent, leaf):
        return "???"
    node = OmegaConf.select(cfg, key, throw_on_missing=False)
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def _grid(composer: _Composer, overrides: list[str]) -> list[list[str]]:
    """Every combination of the sweep overrides, as lists of ``key=value`` strings, in the order of
    Hydra's BasicSweeper (built on Hydra's public ``Override`` API; a key given twice keeps its
    first place and its last values)."""
    choices: dict[str, list[str]] = {}
    for override in composer.parse(overrides):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ClfError(f"bad override {override.input_line}: sweeps list values or a range(), not an interval")
    return [list(combo) for combo in itertools.product(*choices.values())]


def _key(composer: _Composer, override: str) -> str:
    return composer.parse([override])[0].get_key_element()


def expand_overrides(composer: _Composer, overrides: list[str]) -> list[list[str]]:
    """The command line's grid, each combination widened by its preset's grid (keys given on
    the command line win, as with Hydra's ``--multirun``)."""
    runs: list[list[str]] = []
    for combo in _grid(composer, overrides):
        given = {_key(composer, o) for o in combo}
        _, preset = composer.base(combo)
        extra = [f"{k}={v}" for k, v in preset.items() if k not in given]
        runs += [sub + combo for sub in _grid(composer, extra)] if extra else [combo]
    return runs


def _labels(composer: _Composer, runs: list[list[str]]) -> list[list[tuple[str, str]]]:
    """Per run, the (key, value) pairs of the keys whose value differs between runs, by key."""
    pairs = [{_key(composer, o): o.split("=", 1)[1] if "=" in o else "" for o in run} for run in runs]
    keys = sorted({k for p in pairs for k in p})
    varying = [k for k in keys if len({p.get(k) for p in pairs}) > 1]
    return [[(k, p[k]) for k in varying if k in p] for p in pairs]


def plan(overrides: list[str], now: float | None = None) -> Plan:
    """Runs of a sweep (names, overrides, configs), its directory, name and cluster profile."""
    composer = _Composer()
    runs = expand_overrides(composer, list(overrides))
    labels = _labels(composer, runs)
    names = [run_name(pairs) for pairs in labels]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ClfError(f"the sweep lists the same run more than once ({', '.join(twice[:3])})")
    first = composer.config(runs[0], {})
    sweep_dir = Path(first["sweep_dir"] or default_sweep_dir(first["name"], now)).expanduser().absolute()
    planned = []
    for run, pairs, name in zip(runs, labels, names):
        run_dir = sweep_dir / RUNS_DIR / name
        config = composer.config(run, {"run_dir": str(run_dir), "sweep_dir": str(sweep_dir)})
        config["device"] = implied_device(config, run)
        absolute_config(config, Path.cwd())  # jobs and resubmits may start from any directory
        if config["cluster"] != first["cluster"]:
            raise ClfError("cluster settings must be the same for every run of a sweep (submit separate sweeps)")
        planned.append(PlannedRun(name, " ".join(f"{k}={v}" for k, v in pairs), run, config))
    return Plan(planned, sweep_dir, str(first["name"]), dict(first["cluster"]))
