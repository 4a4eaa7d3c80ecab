"""Exceptions and warnings raised by :mod:`ncprobe.data`.

Every error names the path or value it expected, so a wrong ``root`` or a half-downloaded
dataset is diagnosed from the message alone.
"""

from __future__ import annotations

from pathlib import Path

from ncprobe._io import CorruptFileError

__all__ = [
    "CorruptFileError",
    "FewShotFileError",
    "ManifestMismatchError",
    "DatasetLayoutError",
    "SplitFileError",
    "ClassNameMismatchError",
    "UnknownDatasetError",
    "FewShotWarning",
]


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder, split file, annotation file or image is missing.

    Parameters
    ----------
    what:
        Short description of the missing thing (e.g. ``"split file"``).
    path:
        The path that was expected to exist.
    layout:
        The expected folder layout (a small tree, as in CoOp's ``DATASETS.md``), or ``""``.
    hint:
        An extra sentence appended to the message, or ``""``.
    """

    def __init__(self, what: str, path: str | Path, *, layout: str = "", hint: str = "") -> None:
        self.what = what
        self.path = Path(path)
        self.layout = layout
        msg = f"{what} not found: expected {self.path}"
        if hint:
            msg += f"\n{hint}"
        if layout:
            msg += f"\nExpected layout:\n{layout.rstrip()}"
        super().__init__(msg)

    def __str__(self) -> str:  # FileNotFoundError's own __str__ would drop the message
        return self.args[0]


class SplitFileError(ValueError):
    """A ``split_zhou_*.json`` (or an annotation list) exists but cannot be parsed."""


class ClassNameMismatchError(ValueError):
    """Class names disagree: between splits, or between a split and its class-name list."""


class UnknownDatasetError(ValueError):
    """:func:`ncprobe.data.load_dataset` got a name it does not know; the message lists the known ones."""


class FewShotWarning(UserWarning):
    """Some classes have fewer images than ``num_shots``; what was done about it is in the message."""


class FewShotFileError(CorruptFileError):
    """A few-shot file is truncated, damaged, edited, or of another kind; the message names the file.

    Raised for CoOp's ``split_fewshot/shot_K-seed_S.pkl``, ncprobe's cached draws and
    :class:`~ncprobe.data.FewShotManifest` files. ``path`` and ``problem`` are attributes
    (see :class:`ncprobe._io.CorruptFileError`).
    """


class ManifestMismatchError(ValueError):
    """A valid few-shot manifest does not fit the data it is applied to.

    Another dataset, other class names, images that the dataset's split does not list, a different
    test split, or image files whose bytes differ from the recorded hashes.
    """
