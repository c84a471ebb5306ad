"""Writing output files: atomically, with the user's umask permissions, inside a chosen folder.

Every file wsol writes goes through :func:`atomic_write` (or one of its wrappers): the bytes
go to a temporary file in the destination folder, which is renamed over the destination only
when complete, so a reader never sees a half-written file and an interrupted write leaves the
old file (or none). ``tempfile.mkstemp`` creates files with mode 0600; the final file gets
``0666 & ~umask`` instead, the mode a plain ``open(path, "w")`` would have given it.

:func:`confined_path` joins a relative name (an image id) under a folder and refuses names
that would land outside it (``..`` components, absolute paths, symlinks leading out).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Callable, Iterator, Optional

from wsol.errors import WsolError


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The permission bits a newly created file gets under the current umask."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", encoding: Optional[str] = "utf-8",
                 newline: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success rename it to ``path``.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes). Parent folders are created. On any
    exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was. OS errors become a one-line :class:`WsolError` naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        ensure_dir(folder)
        if os.path.isdir(path):
            raise WsolError(f"{path}: is a folder, cannot write a file there")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
        os.fchmod(fd, default_file_mode())
        kw = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kw) as f:
            yield f
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise WsolError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str, text: str, newline: Optional[str] = "\n") -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_write(path, "w", newline=newline) as f:
        f.write(text)
    return path


def write_bytes_atomic(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def write_with(path: str, writer: Callable[[IO], None], binary: bool = True) -> str:
    """Call ``writer(f)`` on a temporary file and rename it to ``path`` when it returns."""
    with atomic_write(path, "wb" if binary else "w") as f:
        writer(f)
    return path


def ensure_dir(folder: str) -> str:
    """Create ``folder`` (and parents); a one-line WsolError when a file is in the way or the
    parent is not writable."""
    if os.path.isdir(folder):
        return folder
    if os.path.lexists(folder):
        raise WsolError(f"{folder}: exists and is not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise WsolError(f"{folder}: a file is in the way of this folder") from None
    except NotADirectoryError:
        raise WsolError(f"{folder}: a parent of this folder is a file") from None
    except OSError as e:
        raise WsolError(f"{folder}: cannot create folder ({e.strerror or e})") from None
    return folder


def is_within(path: str, folder: str) -> bool:
    """Whether ``path`` lies inside ``folder``, after resolving ``..`` and symlinks."""
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real == real_folder or real.startswith(real_folder.rstrip(os.sep) + os.sep)


def confined_path(folder: str, name: str, suffix: str = "") -> str:
    """``folder/name+suffix``, refusing a ``name`` that would resolve outside ``folder``."""
    path = os.path.join(folder, name + suffix)
    if os.path.isabs(name) or not is_within(path, folder):
        raise WsolError(f"{name!r} would be written outside {folder}; refused")
    return path


def read_text_file(path: str, what: str = "file") -> str:
    """The whole of a text file, decoded as UTF-8 (a leading byte-order mark is dropped).

    One-line :class:`DataError` naming the file (and line where there is one) when it is
    missing, unreadable, not UTF-8, or holds NUL bytes (binary data).
    """
    from wsol.errors import DataError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"missing {what}", path=path) from None
    except IsADirectoryError:
        raise DataError(f"{what} is a folder, not a file", path=path) from None
    except OSError as e:
        raise DataError(f"cannot read {what} ({e.strerror or e})", path=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[e.start]:02x}); save the {what} as UTF-8",
                        path=path, line=line) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(f"binary data (NUL byte) in the {what}", path=path, line=text.count("\n", 0, nul) + 1)
    return text


def text_lines(text: str) -> list:
    """Lines of ``text`` split on \\n, \\r\\n or \\r only (str.splitlines also splits on form
    feeds and Unicode separators, which would shift the line numbers errors report)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def load_npy(path: str, what: str = "array"):
    """One array saved with ``numpy.save``; anything else (an ``.npz`` archive under a ``.npy``
    name, a pickle, garbage) is a DataError naming the file."""
    import numpy as np

    from wsol.errors import DataError

    try:
        m = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DataError(f"unreadable {what} ({type(e).__name__})", path=path) from None
    if not isinstance(m, np.ndarray):
        names = ", ".join(list(getattr(m, "files", []))[:3])
        getattr(m, "close", lambda: None)()
        raise DataError(f"unreadable {what}: an .npz archive ({names}), not one array saved with numpy.save",
                        path=path)
    return m
