"""Small I/O helpers shared by every part of ncprobe: the cache folder, atomic writes, hashes, clear read errors.

Writes
------
Every file ncprobe writes (feature caches, few-shot manifests, split files, model configurations,
reports, the embedded model, training checkpoints) goes through :func:`atomic_path`, directly or
through one of the helpers built on it (:func:`atomic_write_bytes`, :func:`atomic_write_text`,
:func:`atomic_write_json`). ``tests/test_atomic_writes.py`` checks the source for writes outside
these helpers. The protocol:

1. the data goes to a new temporary file in the destination folder (same file system, so the rename
   below is atomic), created with mode ``0o666`` minus the umask, i.e. the permissions an ordinary
   ``open(path, "w")`` would give (``tempfile.mkstemp`` would give ``0o600``, which makes shared
   caches unreadable to colleagues);
2. the temporary file is flushed to disk (``fsync``), then renamed onto the target with
   ``os.replace``, then the folder entry is flushed (best effort);
3. on any exception the temporary file is removed and the target is left untouched.

Readers therefore see the old file or the complete new one, also after a crash or a power cut; a
half-written file can only come from outside ncprobe (a copy interrupted by the user, a foreign file
with the expected name). Readers report such files with :class:`CorruptFileError`, which names the
file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "CorruptFileError",
    "cache_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "read_json",
    "file_sha256",
    "stable_hash",
    "silence_stdout",
]


class CorruptFileError(ValueError):
    """A file exists but is truncated, damaged, or not the kind of file expected.

    Attributes
    ----------
    path:
        The offending file.
    problem:
        What is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike, problem: str, *, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        message = f"{self.path}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


def cache_dir(*parts: str) -> Path:
    """Return (and create) ncprobe's cache folder, or a sub-folder of it.

    The root is ``$NCPROBE_CACHE`` when set, else ``$XDG_CACHE_HOME/ncprobe``, else
    ``~/.cache/ncprobe``.
    """
    root = os.environ.get("NCPROBE_CACHE")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "ncprobe")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _new_temp_file(path: Path) -> Path:
    """Create an empty, uniquely named file next to ``path`` with the default (umask) permissions."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file next to {path}")  # pragma: no cover


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder entry (the rename); not possible on every platform or file system."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; rename it onto ``path`` on success.

    The yielded file exists and is empty; write it by name (``save_file(state, str(tmp))``,
    ``ds.to_netcdf(tmp)``, ``open(tmp, "wb")``). The temporary name keeps ``path``'s suffix at the
    end, for writers that choose a format by suffix. See the module docstring for the guarantees.

    Parameters
    ----------
    path:
        The destination. Its folder is created if missing.
    durable:
        ``fsync`` the file before the rename and the folder after it, so the new content survives
        a crash. ``False`` only for throw-away files where speed matters more.

    Example
    -------
    >>> with atomic_path("/tmp/x.npz") as tmp:          # doctest: +SKIP
    ...     np.savez(tmp, a=1)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path)
    try:
        yield tmp_path
        if durable:
            _fsync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, **dumps_options: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically, with a final newline; returns ``path``.

    ``dumps_options`` go to :func:`json.dumps` (default ``indent=2``, ``allow_nan=False`` so the file is
    standard JSON that any reader accepts).
    """
    options = {"indent": 2, "allow_nan": False, **dumps_options}
    return atomic_write_text(path, json.dumps(obj, **options) + "\n")


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    """Parse a JSON file, naming the file in every error.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CorruptFileError
        The file is empty, truncated, not UTF-8 or not JSON (the message says which ``what`` was
        expected).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    if not raw.strip():
        raise CorruptFileError(path, f"empty file where a {what} was expected")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not a {what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(
            path, f"not a valid {what} (truncated or damaged?): {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def file_sha256(path: str | os.PathLike, *, block_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short, stable hex digest of a JSON-serialisable object (keys sorted), for cache keys."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def silence_stdout() -> None:
    """Point the process's stdout at the null device, so that Python's flush at exit does not raise into a pipe
    whose reader has gone (``ncprobe train --list-presets | head``); a stdout that is no file (captured) is left
    alone. It opens no file of the user's: the one write-mode open outside the atomic helpers lives here."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    finally:
        os.close(devnull)
