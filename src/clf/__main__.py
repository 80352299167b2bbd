"""``python -m clf`` is the same as the ``clf`` command."""

from clf.cli import run

run()
