"""Compose the config tree in ``conf/`` with Hydra overrides and validate it.

Uses Hydra's compose API (not ``@hydra.main``) so that each ``clf`` subcommand controls its
own output directory, logging and error messages.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from clf.config.schema import Config
from clf.config.validate import validate
from clf.errors import ClfError, one_line

_REGISTERED = False


SEARCH_PATH_VARIABLE = "CLF_CONFIG_PATH"


def config_dir() -> Path:
    """``$CLF_CONF_DIR``, else the ``conf/`` shipped inside the installed package (``clf/conf``,
    package data of the wheel), else the ``conf/`` of the checkout an editable install runs from."""
    env = os.environ.get("CLF_CONF_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [here.parents[1] / "conf", here.parents[3] / "conf"]
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ClfError(f"cannot find the config tree (conf/config.yaml); looked in {', '.join(map(str, candidates))}")


def extra_config_dirs() -> list[Path]:
    """The users' own config directories, ``$CLF_CONFIG_PATH`` (separated like ``$PATH``), each
    laid out like ``conf/`` (``cluster/mylab.yaml``, ``experiment/mine.yaml``); searched after
    the shipped tree, so they add names rather than replace shipped ones. ClfError if one is
    not a directory."""
    dirs = [Path(p).expanduser().absolute() for p in os.environ.get(SEARCH_PATH_VARIABLE, "").split(os.pathsep) if p]
    for directory in dirs:
        if not directory.is_dir():
            raise ClfError(f"${SEARCH_PATH_VARIABLE} names a directory that does not exist", directory)
    return dirs


def search_path_overrides() -> list[str]:
    """Hydra's ``hydra.searchpath`` override for ``extra_config_dirs()`` (none when there are none)."""
    dirs = extra_config_dirs()
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"'file://{d}'" for d in dirs) + "]"]


def _register_schema() -> None:
    global _REGISTERED
    if not _REGISTERED:
        ConfigStore.instance().store(name="base_config", node=Config)
        _REGISTERED = True


def compose_raw(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config",
                hydra_node: bool = False) -> DictConfig:
    """Hydra's composition alone, without ``check``. With ``hydra_node``, Hydra's own ``hydra``
    node is kept (``clf submit`` reads a preset's grid from ``hydra.sweeper.params``)."""
    _register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="clf"):
            return hydra_compose(config_name=config_name, overrides=[*search_path_overrides(), *overrides],
                                 return_hydra_config=hydra_node)
    except ClfError:
        raise
    except Exception as exc:  # Hydra and OmegaConf raise many types; all mean "bad config"
        raise ClfError(f"bad config or override: {one_line(exc, first_lines=True)}") from None
    finally:
        GlobalHydra.instance().clear()


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra ``overrides``; raise ClfError if invalid."""
    return check(compose_raw(overrides, config_name))


def check(cfg: DictConfig) -> DictConfig:
    """Struct mode, no key outside the schema, valid values (ClfError otherwise); returns ``cfg``."""
    OmegaConf.set_struct(cfg, True)
    check_schema(cfg)
    if OmegaConf.get_type(cfg) is Config:  # other primary configs (conf/w2v.yaml) check their own values
        validate(cfg)
    return cfg


def check_schema(cfg: DictConfig) -> None:
    """Reject keys the schema lacks: Hydra lets ``+model.nosuch=1`` add one to a structured config,
    and such a run could never be resumed (``from_yaml`` rejects its stored config)."""
    schema = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return
    try:
        OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(OmegaConf.to_container(cfg)))
    except Exception as exc:
        raise ClfError(f"bad config or override: {one_line(exc, first_lines=True)}") from None


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Plain, resolved dict (for JSON files)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def from_yaml(text: str) -> DictConfig:
    """Rebuild a validated config from YAML text (as stored in checkpoints and run dirs)."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(text))
    except Exception as exc:
        raise ClfError(f"stored config is not valid: {one_line(exc, first_lines=True)}") from None
    OmegaConf.set_struct(cfg, True)
    return cfg  # type: ignore[return-value]
