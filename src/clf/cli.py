"""The ``clf`` command: ``clf <subcommand> [args]``.

Subcommands live in ``clf.commands.<name>`` and are imported only when used, so that quick
ones (``clf status``) do not pay for importing torch.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from typing import NoReturn

from clf import __version__
from clf.diskfull import DiskFull, is_disk_full, written_file
from clf.errors import USAGE_EXIT, ClfError, one_line
from clf.stop import EXIT_INTERRUPTED

COMMANDS: dict[str, str] = {
    "train": "train (or resume) one run on this machine",
    "w2v": "pre-train word2vec vectors (gensim) on a data source, or import published vectors",
    "aggregate": "one table (CSV, Markdown, plots) of the runs of one or more sweeps",
    "explain": "a run's prediction and attention for a text, or its heads over a split",
    "submit": "submit a sweep (or one clf command) to Slurm or this machine, without waiting",
    "status": "where a submitted sweep stands: one row per run, counts per state",
    "cancel": "cancel every job of a sweep",
    "resubmit": "rerun a sweep's failed or unfinished runs; they resume from their checkpoints",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: clf <command> [args]   (clf {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "`clf <command> --help` describes one command."]
    return "\n".join(lines)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"clf: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return USAGE_EXIT
    setup_logging()
    try:
        module = importlib.import_module(f"clf.commands.{name.replace('-', '_')}")
        return int(module.main(rest) or 0)
    except ClfError as exc:
        print(f"clf {name}: error: {one_line(exc)}", file=sys.stderr)
        return USAGE_EXIT
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        print(f"clf {name}: error: {one_line(DiskFull(written_file(exc) or os.getcwd(), exc))}", file=sys.stderr)
        return USAGE_EXIT
    except KeyboardInterrupt:  # a second Ctrl-C, or clf.stop.Stopped
        print(f"clf {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def nothing_else_running() -> bool:
    """No other non-daemon thread, child process of ``multiprocessing`` or process group of
    ``torch.distributed`` in this process: what an interpreter's normal exit would wait for or
    close."""
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return False
    if "multiprocessing" in sys.modules and sys.modules["multiprocessing"].active_children():
        return False
    distributed = sys.modules.get("torch.distributed")
    return not (distributed is not None and distributed.is_available() and distributed.is_initialized())


def run() -> NoReturn:
    """The ``clf`` command (and ``python -m clf``): ``main``, then a quick exit.

    Tearing down an interpreter that imported torch takes about 0.6 s (modules' and C++
    statics' clean-up) and keeps nothing: every file clf writes is flushed, fsynced and
    renamed before ``main`` returns. So, with nothing else running, stdio and logging are
    flushed and the process ends at once; otherwise Python exits the usual way.
    """
    code = main()
    if nothing_else_running():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (clf status | head): nothing left to say
                pass
        logging.shutdown()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
