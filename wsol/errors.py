"""Errors wsol reports to users as one line (the CLI prints them without a traceback)."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional


class WsolError(Exception):
    """A user-facing error: its message is one line naming the file (and line) at fault."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with a message saying how far it got and what is on disk."""


class DataError(WsolError):
    """Bad or missing dataset files."""

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class UnknownNameError(WsolError):
    """An unknown registry name (backbone, method, dataset ...)."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        listing = "" if close else f"; known: {', '.join(known[:30])}{' ...' if len(known) > 30 else ''}"
        super().__init__(f"unknown {kind} '{name}'{hint}{listing}")
        self.close = close


def closest(name: str, known: Iterable[str]) -> list[str]:
    """Close matches of ``name`` among ``known`` (for error hints)."""
    return difflib.get_close_matches(name, sorted(known), n=5, cutoff=0.4)


def first_line(e: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message, at most ``limit`` characters; the exception's
    type name when the message is empty (``str(EOFError())`` is '')."""
    lines = str(e).strip().splitlines()
    return lines[0][:limit] if lines else type(e).__name__
