"""Paths of a submission made absolute against the directory ``clf submit`` ran in, so that a job
started, requeued or resubmitted (``clf resubmit`` from anywhere) reads and writes the same files.

A run's config: every path key (``CONFIG_PATH_KEYS``). A ``--job`` command's arguments: the
values of path keys (``data.dir=``, ``out=``, ...), of ``--out``, and positional arguments that
name an existing file or directory; the job also runs in the submit directory (the manifest's
``submit_dir``), so a relative path none of these rules catches still means what it meant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CONFIG_PATH_KEYS = ("run_dir", "sweep_dir", "data.dir", "data.train", "data.dev", "data.test", "data.unlabeled",
                    "data.cache_dir", "embeddings.dir")
JOB_PATH_KEYS = frozenset(CONFIG_PATH_KEYS) | {"out"}
JOB_PATH_OPTIONS = frozenset({"--out"})


def absolute(value: str, base: Path) -> str:
    """``value`` (``~`` expanded) joined to ``base`` unless absolute, normalised."""
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def absolute_config(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """``config`` (a resolved run config) with its path keys made absolute, in place."""
    for key in CONFIG_PATH_KEYS:
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.get(part) or {}
        if isinstance(node.get(leaf), str) and node[leaf]:
            node[leaf] = absolute(node[leaf], base)
    return config


def absolute_job_args(args: list[str], base: Path) -> list[str]:
    """A ``clf COMMAND ARGS`` job's ``ARGS`` with their paths made absolute (see the module)."""
    out: list[str] = []
    path_option_value = False
    for arg in args:
        if path_option_value:
            out.append(absolute(arg, base))
            path_option_value = False
            continue
        option, sep, value = arg.partition("=")
        if arg in JOB_PATH_OPTIONS:
            path_option_value = True
            out.append(arg)
        elif sep and value and (option in JOB_PATH_OPTIONS or option.lstrip("+~") in JOB_PATH_KEYS):
            out.append(f"{option}={absolute(value, base)}")
        elif not arg.startswith("-") and not sep and arg and (base / arg).exists():
            out.append(absolute(arg, base))
        else:
            out.append(arg)
    return out
