"""Output folders: which wsol command wrote one, and a lock for commands that must run alone.

A command may only remove or overwrite outputs of its own kind. :func:`claim_output_dir` looks
at what a folder holds before a command writes there and refuses, in one line, when a file it
would replace belongs to another kind of output (``wsol evaluate --out`` pointed at a suite
folder must not delete the suite's summary.csv).
"""
from __future__ import annotations

import contextlib
import csv
import os
from typing import Iterator, Optional, Sequence

from wsol.errors import WsolError
from wsol.utils.io import ensure_dir

KIND_NAMES = {
    "run": "a `wsol evaluate`/`wsol score` run (run.json)",
    "suite": "a `wsol suite` folder (summary.csv of runs)",
    "demo": "a `wsol demo` folder",
    "train": "a `wsol train` run (last.pt / train_log.csv)",
    "metadata": "wsolevaluation metadata (image_ids.txt)",
    "unknown": "files wsol did not write as a run",
}

RUN_FILES = ("summary.csv", "per_image.csv", "curves.csv", "timings.csv", "run.json")


def _csv_header(path: str) -> list:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            return next(csv.reader(f), [])
    except OSError:
        return []


def output_kind(folder: str) -> Optional[str]:
    """The kind of wsol output ``folder`` holds (a key of KIND_NAMES), or None when it is
    absent, empty or holds none of the files wsol writes."""
    if not os.path.isdir(folder):
        return None

    def has(name: str) -> bool:
        return os.path.exists(os.path.join(folder, name))

    if has("run.json"):
        return "run"
    if has("last.pt") or has("train_log.csv") or has("train_config.json"):
        return "train"
    if has("summary.csv") and _csv_header(os.path.join(folder, "summary.csv"))[:1] == ["run_id"]:
        demo = any(os.path.exists(os.path.join(folder, d, "last.pt")) for d in ("train", "train-quick"))
        return "demo" if demo else "suite"
    if has("image_ids.txt"):
        return "metadata"
    if any(has(n) for n in RUN_FILES):
        return "unknown"
    return None


def claim_output_dir(folder: str, kind: str, writes: Sequence[str],
                     compatible: Sequence[str] = (), flag: str = "--out") -> str:
    """Create ``folder`` for a command of ``kind`` that writes (or removes) the files ``writes``.

    Refused with a one-line WsolError: ``folder`` is a file or cannot be created, or one of
    ``writes`` already exists there as part of another kind of output.
    """
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise WsolError(f"{flag} {folder}: exists and is not a folder")
    found = output_kind(folder)
    if found is not None and found != kind and found not in compatible:
        clash = [n for n in writes if os.path.lexists(os.path.join(folder, n))]
        if clash:
            raise WsolError(f"{flag} {folder}: holds {KIND_NAMES[found]}; its {clash[0]} would be overwritten "
                            f"by {KIND_NAMES[kind]}; refused (choose another {flag})")
    ensure_dir(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WsolError(f"{flag} {folder}: folder is not writable")
    return folder


@contextlib.contextmanager
def folder_lock(folder: str, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.wsol.lock`` while the block runs.

    A second process asking for the same lock gets a one-line WsolError at once (no
    waiting). The lock is released when the process ends, however it ends.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: run unlocked
        yield
        return
    path = os.path.join(ensure_dir(folder), ".wsol.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise WsolError(f"{path}: cannot create lock file ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            raise WsolError(f"{folder}: another {what} is running in this folder"
                            f"{f' (pid {other})' if other else ''}; wait for it to finish or choose "
                            "another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def claim_output_file(path: str, suffixes: Sequence[str], flag: str = "--out") -> str:
    """Check a file a command is about to write: refused (one line) when ``path`` is a folder,
    or an existing file of another kind (``wsol report --out RUN/summary.csv`` would replace
    the run's summary with HTML). An existing file with one of ``suffixes`` is replaced."""
    if os.path.isdir(path):
        raise WsolError(f"{flag} {path}: is a folder; give a file name")
    if os.path.lexists(path) and not path.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise WsolError(f"{flag} {path}: exists and is not a {'/'.join(suffixes)} file; refused to overwrite it")
    return path


#: prefix of the hidden folder a run writes into before its results replace the old ones
STAGE_PREFIX = ".wsol-partial-"


@contextlib.contextmanager
def staged_outputs(folder: Optional[str], outputs: Sequence[str], last: str = "summary.csv",
                   created: bool = False) -> Iterator[Optional[str]]:
    """Write a command's outputs into a fresh hidden folder inside ``folder``; they replace the
    files there only when the block finishes.

    Yields the staging folder (None when ``folder`` is None). On success every staged file is
    moved over its namesake (``last`` last, so its presence means the outputs are complete) and
    files of ``outputs`` that the new run did not write are removed (an old report.html
    describing other numbers). On any exception the staging folder is removed and the old
    outputs are untouched; ``created``: ``folder`` was made for this command, so it is removed
    too when nothing else is in it (a failed run leaves no empty folder behind).
    """
    import shutil
    import tempfile

    if folder is None:
        yield None
        return
    stage = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=folder)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty
        raise
    new = sorted(os.listdir(stage), key=lambda n: n == last)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(folder, last))  # from here the folder reads as unfinished
    for name in outputs:
        if name not in new:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
    for name in new:
        os.replace(os.path.join(stage, name), os.path.join(folder, name))
    os.rmdir(stage)


@contextlib.contextmanager
def fresh_dir(folder: Optional[str]) -> Iterator[Optional[str]]:
    """Create ``folder`` (when given) for the block; if the block fails and the folder was made
    here and is still empty, remove it again (no empty ``--save-cams`` after a failed run)."""
    if not folder:
        yield folder
        return
    created = not os.path.lexists(folder)
    ensure_dir(folder)  # a file in the way fails now, not after the first batch
    try:
        yield folder
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
