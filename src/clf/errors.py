"""The one error type users see: a one-line message and exit status 2."""

from __future__ import annotations

from pathlib import Path

USAGE_EXIT = 2


class ClfError(Exception):
    """Bad input or configuration. Printed as ``clf: error: <message>``, exit status 2."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        text = " ".join(str(message).split())
        super().__init__(f"{path}: {text}" if path is not None else text)


def one_line(exc: BaseException, first_lines: bool = False) -> str:
    """Collapse an exception and its direct causes into one line.

    With ``first_lines``, only the first line of each message is kept (Hydra and OmegaConf
    append key dumps and search paths on the following lines), plus any list of available
    options Hydra gives.
    """
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        message = str(current).strip()
        lines = message.splitlines()
        if first_lines and lines:
            options = [ln.strip() for ln in lines[1:] if ln.startswith("\t") and "=" not in ln]
            message = lines[0] + (f" (available: {', '.join(options)})" if options else "")
        text = " ".join(message.split()).rstrip(".")
        if text and not any(text in p for p in parts):
            parts.append(text)
        current = current.__cause__
    return ": ".join(parts) if parts else type(exc).__name__
