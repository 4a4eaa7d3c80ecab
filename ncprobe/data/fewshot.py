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
5. The result is cached at ``<dataset_dir>/split_fewshot/shot_{K}-seed_{seed}.pkl`` and reused
   whenever that file exists (the cache key has no ``subsample``: base and new share it).

The cache files themselves (ncprobe's and CoOp's formats) are handled by
:mod:`ncprobe.data.fewshot_cache`.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ncprobe.data.errors import FewShotWarning
from ncprobe.data.fewshot_cache import fewshot_cache_path, load_fewshot_cache, save_fewshot_cache
from ncprobe.data.items import Item, split_by_label

__all__ = [
    "VAL_SHOTS_CAP",
    "generate_fewshot_dataset",
    "sample_fewshot",
    "FewShotResult",
    "load_or_sample_fewshot",
]

#: CoOp samples the validation split with ``min(num_shots, VAL_SHOTS_CAP)`` shots.
VAL_SHOTS_CAP = 4


def generate_fewshot_dataset(
    items: Sequence[Item], *, num_shots: int, rng: random.Random, repeat: bool = False, split: str = "train"
) -> list[Item]:
    """Draw ``num_shots`` items per class exactly as Dassl's ``generate_fewshot_dataset`` does.

    Parameters
    ----------
    items:
        The full split, in the order the reader produced it (order matters for the draw).
    num_shots:
        Shots per class; ``< 1`` returns ``list(items)`` unchanged (Dassl).
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
    rng = random.Random(seed)
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
        The pkl file consulted/written, or ``None`` when caching was off.
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
    """CoOp's cached few-shot step: reuse ``shot_{K}-seed_{seed}.pkl`` if present, else sample and save.

    Parameters
    ----------
    train, val:
        Full splits; ``val=None`` when the dataset's val is its test set (ImageNet) or absent.
    num_shots, seed, repeat:
        See :func:`sample_fewshot`.
    dataset_dir:
        The dataset folder (``$DATA/<name>``).
    fewshot_dir:
        Cache folder; default ``<dataset_dir>/split_fewshot`` as in CoOp.
    use_cache:
        ``False`` always samples and writes nothing.

    Returns
    -------
    FewShotResult

    Notes
    -----
    An ncprobe cache whose recorded ``num_shots``/``seed``/``repeat`` differ from the request is
    resampled and overwritten. A CoOp cache is trusted as CoOp trusts it; if it lacks a split that
    is needed here, that draw is redone in memory and the CoOp file is left untouched. A cache
    folder that cannot be written (read-only data) only triggers a warning.
    """
    dataset_dir = Path(dataset_dir)
    if num_shots < 1:
        return FewShotResult(list(train), None if val is None else list(val), None, False)
    cache_path = None
    if use_cache:
        folder = Path(fewshot_dir) if fewshot_dir is not None else dataset_dir / "split_fewshot"
        cache_path = fewshot_cache_path(folder, num_shots=num_shots, seed=seed)
        if cache_path.is_file():
            cached = load_fewshot_cache(cache_path, dataset_dir=dataset_dir)
            complete = val is None or cached["val"] is not None
            meta = cached["meta"]
            if cached["format"] == "ncprobe":
                fresh = (meta["num_shots"], meta["seed"], meta["repeat"]) == (num_shots, seed, repeat)
            else:
                fresh = True
            if fresh and complete:
                cached_val = cached["val"] if val is not None else None
                return FewShotResult(cached["train"], cached_val, cache_path, True, cached["format"])
            if cached["format"] == "dassl":
                warnings.warn(f"CoOp cache {cache_path} has no 'val' split; sampling again in memory", stacklevel=2)
                new_train, new_val = sample_fewshot(train, val, num_shots=num_shots, seed=seed, repeat=repeat)
                return FewShotResult(new_train, new_val, cache_path, False)
    new_train, new_val = sample_fewshot(train, val, num_shots=num_shots, seed=seed, repeat=repeat)
    if cache_path is not None:
        try:
            save_fewshot_cache(
                cache_path,
                new_train,
                new_val,
                num_shots=num_shots,
                seed=seed,
                repeat=repeat,
                dataset_dir=dataset_dir,
            )
        except OSError as exc:
            warnings.warn(f"could not write few-shot cache {cache_path}: {exc}", stacklevel=2)
    return FewShotResult(new_train, new_val, cache_path, False)
