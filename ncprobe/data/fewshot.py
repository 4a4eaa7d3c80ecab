"""Seeded K-shot sampling that selects exactly the images Dassl/CoOp select, with CoOp's pkl cache.

Source semantics (``KaiyangZhou/Dassl.pytorch``, ``dassl/data/datasets/base_dataset.py``,
``DatasetBase.generate_fewshot_dataset``; call sites in every ``KaiyangZhou/CoOp/datasets/*.py``):

1. CoOp's ``train.py`` calls ``set_random_seed(cfg.SEED)`` (``dassl/utils/tools.py``:
   ``random.seed(seed)``, plus numpy/torch seeds that the sampler does not use) before the dataset
   is built; nothing else draws from Python's ``random`` in between when the split file exists.
   Here a private ``random.Random(seed)`` gives the same stream without touching global state.
2. Items are grouped by label in **first-appearance order** (``split_dataset_by_label``).
3. For each group in that order: ``random.sample(items, K)`` if it has at least K items; otherwise
   all items are kept (``repeat=False``, Dassl's current default) or ``random.choices(items, k=K)``
   is drawn (``repeat=True``, the default of older Dassl releases). A short class consumes no
   random numbers when ``repeat=False``.
4. CoOp samples ``train`` with K shots, then ``val`` with ``min(K, 4)`` shots from the **same**
   stream; ImageNet (val = test) samples ``train`` only.
5. CoOp caches the result at ``<dataset_dir>/split_fewshot/shot_{K}-seed_{seed}.pkl`` and reuses
   it whenever that file exists (the cache key has no ``subsample``: base and novel share it).

Caching here (:func:`load_or_sample_fewshot`): CoOp's pkl is read when it exists (so a run next to
a CoOp run uses CoOp's exact images); otherwise ncprobe's own JSON manifest
``split_fewshot/ncprobe_shot_{K}-seed_{S}[-repeat].json`` is read or written. ncprobe never writes
CoOp's file name. File formats: :mod:`ncprobe.data.fewshot_cache` and :mod:`ncprobe.data.manifest`.

Validation: ``num_shots`` must be a whole number (``0`` = every image in the data-set entry points;
Dassl's ``-1`` for "all" is rejected there, since a negative count is more often a bug than a
convention) and ``seed`` an integer; floats such as ``16.5`` are rejected everywhere rather than
truncated.
"""

from __future__ import annotations

import operator
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ncprobe.data.errors import FewShotWarning
from ncprobe.data.fewshot_cache import fewshot_cache_path, load_fewshot_cache, save_fewshot_cache
from ncprobe.data.items import Item, split_by_label
from ncprobe.data.manifest import fewshot_manifest_path, relative_image_path

__all__ = [
    "VAL_SHOTS_CAP",
    "check_num_shots",
    "check_seed",
    "generate_fewshot_dataset",
    "sample_fewshot",
    "FewShotResult",
    "load_or_sample_fewshot",
]

#: CoOp samples the validation split with ``min(num_shots, VAL_SHOTS_CAP)`` shots.
VAL_SHOTS_CAP = 4


def check_num_shots(num_shots: object, *, minimum: int = 0) -> int:
    """``num_shots`` as an ``int`` if it is a whole number ``>= minimum``, else a ``ValueError``/``TypeError``.

    Booleans and floats (even ``16.0``) are refused: a fractional shot count is a bug, not a request.
    """
    if isinstance(num_shots, bool):
        raise TypeError(f"num_shots must be a whole number of images per class, got {num_shots!r}")
    try:
        value = operator.index(num_shots)
    except TypeError:
        raise TypeError(
            f"num_shots must be a whole number of images per class, got {num_shots!r} ({type(num_shots).__name__})"
        ) from None
    if value < minimum:
        hint = " (0 = every image; Dassl's -1 for 'all' is written 0 here)" if minimum == 0 else ""
        raise ValueError(f"num_shots must be >= {minimum}{hint}, got {value}")
    return value


def check_seed(seed: object) -> int:
    """``seed`` as an ``int`` (Dassl's ``set_random_seed`` takes integers), else a ``TypeError``."""
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    try:
        return operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer, got {seed!r} ({type(seed).__name__})") from None


def generate_fewshot_dataset(
    items: Sequence[Item], *, num_shots: int, rng: random.Random, repeat: bool = False, split: str = "train"
) -> list[Item]:
    """Draw ``num_shots`` items per class exactly as Dassl's ``generate_fewshot_dataset`` does.

    Parameters
    ----------
    items:
        The full split, in the order the reader produced it (order matters for the draw).
    num_shots:
        Shots per class, a whole number; ``< 1`` returns ``list(items)`` unchanged (Dassl).
    rng:
        The random stream, consumed in place (pass the same instance for train then val).
    repeat:
        What to do for a class with fewer than ``num_shots`` items: ``False`` keeps all of them,
        ``True`` draws ``num_shots`` with replacement (``rng.choices``). Either way a
        :class:`~ncprobe.data.errors.FewShotWarning` lists the short classes.
    split:
        Name used in the warning.

    Returns
    -------
    list of Item
        Classes in first-appearance order, each class's draw in ``random.sample`` order.
    """
    num_shots = check_num_shots(num_shots, minimum=-(2**63))
    if num_shots < 1:
        return list(items)
    out: list[Item] = []
    short: list[str] = []
    for label, group in split_by_label(items).items():
        if len(group) >= num_shots:
            out.extend(rng.sample(group, num_shots))
        else:
            short.append(f"{label} ({group[0].classname!r}): {len(group)}")
            out.extend(rng.choices(group, k=num_shots) if repeat else group)
    if short:
        action = f"drew {num_shots} with replacement (repeat=True)" if repeat else "kept all (repeat=False)"
        listed = ", ".join(short[:10]) + (f", ... ({len(short)} classes)" if len(short) > 10 else "")
        warnings.warn(
            f"{split}: {len(short)} class(es) have fewer than num_shots={num_shots} items; {action}. "
            f"label (name): count = {listed}",
            FewShotWarning,
            stacklevel=2,
        )
    return out


def sample_fewshot(
    train: Sequence[Item],
    val: Sequence[Item] | None,
    *,
    num_shots: int,
    seed: int,
    repeat: bool = False,
) -> tuple[list[Item], list[Item] | None]:
    """CoOp's draw: ``train`` with ``num_shots``, then ``val`` with ``min(num_shots, 4)``, one stream.

    Parameters
    ----------
    train, val:
        Full splits. ``val=None`` skips it (ImageNet, whose val is the test set).
    num_shots:
        Shots per class (``>= 1``).
    seed:
        ``random.Random(seed)`` ≡ Dassl's ``set_random_seed(seed)`` for Python's ``random``.
    repeat:
        See :func:`generate_fewshot_dataset`.

    Returns
    -------
    (train_fewshot, val_fewshot or None)
    """
    num_shots = check_num_shots(num_shots, minimum=1)
    rng = random.Random(check_seed(seed))
    new_train = generate_fewshot_dataset(train, num_shots=num_shots, rng=rng, repeat=repeat, split="train")
    if val is None:
        return new_train, None
    val_shots = min(num_shots, VAL_SHOTS_CAP)
    new_val = generate_fewshot_dataset(val, num_shots=val_shots, rng=rng, repeat=repeat, split="val")
    return new_train, new_val


@dataclass(frozen=True)
class FewShotResult:
    """Outcome of :func:`load_or_sample_fewshot`.

    Attributes
    ----------
    train, val:
        The K-shot splits (``val`` is ``None`` when it was not sampled).
    cache_path:
        The cache file read (CoOp's pkl or ncprobe's JSON manifest) or written (ncprobe's manifest),
        or ``None`` when caching was off.
    from_cache:
        Whether the items were read from ``cache_path``.
    cache_format:
        ``"ncprobe"`` or ``"dassl"`` when read from a cache, else ``None``.
    """

    train: list[Item]
    val: list[Item] | None
    cache_path: Path | None
    from_cache: bool
    cache_format: str | None = None

    def __repr__(self) -> str:
        val = "None" if self.val is None else f"{len(self.val)} items"
        return (
            f"FewShotResult(train={len(self.train)} items, val={val}, cache_path={self.cache_path}, "
            f"from_cache={self.from_cache}, cache_format={self.cache_format!r})"
        )


def _stale(cached_train: Sequence[Item], cached_val: Sequence[Item] | None, train, val, root: Path) -> str:
    """Why a cached draw does not belong to these full splits ("" when it does)."""
    for split, got, full in (("train", cached_train, train), ("val", cached_val, val)):
        if got is None or full is None:
            continue
        known = {(relative_image_path(it.impath, root) or it.impath, it.label) for it in full}
        missing = [it for it in got if (relative_image_path(it.impath, root) or it.impath, it.label) not in known]
        if missing:
            return (
                f"{len(missing)} of its {split} images are not in the current {split} split (e.g. {missing[0].impath})"
            )
    return ""


def load_or_sample_fewshot(
    train: Sequence[Item],
    val: Sequence[Item] | None,
    *,
    num_shots: int,
    seed: int,
    dataset_dir: str | os.PathLike,
    repeat: bool = False,
    fewshot_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> FewShotResult:
    """The cached few-shot step: reuse CoOp's or ncprobe's cache file if present, else sample and save.

    Order: (1) CoOp's ``shot_{K}-seed_{seed}.pkl`` in the cache folder, when it exists, exactly as
    CoOp would read it (an old ncprobe pickle under that name is ignored with a warning);
    (2) ncprobe's ``ncprobe_shot_{K}-seed_{seed}[-repeat].json`` manifest; (3) sample, and write (2).

    Parameters
    ----------
    train, val:
        Full splits; ``val=None`` when the dataset's val is its test set (ImageNet) or absent.
    num_shots, seed, repeat:
        See :func:`sample_fewshot`. ``num_shots=0`` keeps every image (and caches nothing).
    dataset_dir:
        The dataset folder (``$DATA/<name>``); cached paths are relative to it.
    fewshot_dir:
        Cache folder; default ``<dataset_dir>/split_fewshot`` as in CoOp.
    use_cache:
        ``False`` always samples and writes nothing.

    Returns
    -------
    FewShotResult

    Raises
    ------
    FewShotFileError
        A cache file exists but is truncated, damaged or foreign (the message names the file; delete
        it to sample again).

    Notes
    -----
    An ncprobe manifest whose recorded ``num_shots``/``seed``/``repeat`` differ from its name, or
    whose images are no longer all in the current splits (the split file changed), is stale: it is
    resampled and overwritten, with a warning. A CoOp cache is trusted as CoOp trusts it; if it
    lacks a split that is needed here, that draw is redone in memory and the CoOp file is left
    untouched. A cache folder that cannot be written (read-only data) only triggers a warning.
    """
    num_shots = check_num_shots(num_shots)
    seed = check_seed(seed)
    dataset_dir = Path(dataset_dir)
    if num_shots < 1:
        return FewShotResult(list(train), None if val is None else list(val), None, False)
    own_path = None
    if use_cache:
        folder = Path(fewshot_dir) if fewshot_dir is not None else dataset_dir / "split_fewshot"
        coop_path = fewshot_cache_path(folder, num_shots=num_shots, seed=seed)
        if coop_path.is_file():
            cached = load_fewshot_cache(coop_path, dataset_dir=dataset_dir)
            if cached["format"] == "dassl":
                if val is None or cached["val"] is not None:
                    cached_val = cached["val"] if val is not None else None
                    return FewShotResult(cached["train"], cached_val, coop_path, True, "dassl")
                warnings.warn(f"CoOp cache {coop_path} has no 'val' split; sampling again in memory", stacklevel=2)
                new_train, new_val = sample_fewshot(train, val, num_shots=num_shots, seed=seed, repeat=repeat)
                return FewShotResult(new_train, new_val, coop_path, False)
            warnings.warn(
                f"{coop_path} was written by an older ncprobe in its own format under CoOp's file name; CoOp, "
                "MaPLe and Craft crash when they unpickle it. Ignoring it (ncprobe now caches in "
                "ncprobe_shot_*.json); please delete it.",
                stacklevel=2,
            )
        own_path = fewshot_manifest_path(folder, num_shots=num_shots, seed=seed, repeat=repeat)
        if own_path.is_file():
            cached = load_fewshot_cache(own_path, dataset_dir=dataset_dir)
            meta = cached["meta"]
            settings = (meta["num_shots"], meta["seed"], meta["repeat"], meta["subsample"])
            why = ""
            if settings != (num_shots, seed, repeat, "all"):
                why = f"it records num_shots/seed/repeat/subsample = {settings}"
            elif (val is None) != (cached["val"] is None):
                why = "its val split does not match this dataset's (separate val or none)"
            else:
                why = _stale(cached["train"], cached["val"], train, val, dataset_dir)
            if not why:
                return FewShotResult(cached["train"], cached["val"], own_path, True, "ncprobe")
            warnings.warn(f"few-shot cache {own_path} is stale ({why}); sampling again and replacing it", stacklevel=2)
    new_train, new_val = sample_fewshot(train, val, num_shots=num_shots, seed=seed, repeat=repeat)
    if own_path is not None and new_train:
        try:
            save_fewshot_cache(
                own_path,
                new_train,
                new_val,
                num_shots=num_shots,
                seed=seed,
                repeat=repeat,
                dataset_dir=dataset_dir,
            )
        except OSError as exc:
            warnings.warn(f"could not write few-shot cache {own_path}: {exc}", stacklevel=2)
        except ValueError as exc:  # images outside the dataset folder cannot be recorded relative to it
            warnings.warn(f"not caching the few-shot draw in {own_path}: {exc}", stacklevel=2)
    return FewShotResult(new_train, new_val, own_path, False)
