"""Small I/O helpers shared by every part of ncprobe: the cache folder and atomic writes.

Everything ncprobe writes to disk (feature caches, few-shot split caches, the embedded model,
training checkpoints) goes through :func:`atomic_path`, so an interrupted run never leaves a
half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["cache_dir", "atomic_path", "stable_hash"]


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; rename it onto ``path`` on success.

    The rename is atomic on POSIX file systems (``os.replace``), so readers see either the old
    file or the complete new one. On an exception the temporary file is removed.

    Example
    -------
    >>> with atomic_path("/tmp/x.npz") as tmp:          # doctest: +SKIP
    ...     np.savez(tmp, a=1)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short, stable hex digest of a JSON-serialisable object (keys sorted), for cache keys."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]
