"""Image transforms of the prompt-tuning protocol (Dassl defaults as configured by CoOp/MaPLe/Craft).

Source: ``KaiyangZhou/Dassl.pytorch/dassl/data/transforms/transforms.py``
(``_build_transform_train`` / ``_build_transform_test``) with the CoOp configs' ``INPUT`` block:
``SIZE (224, 224)``, ``INTERPOLATION "bicubic"``, ``TRANSFORMS ["random_resized_crop",
"random_flip", "normalize"]``, ``RRCROP_SCALE (0.08, 1.0)`` and CLIP's pixel mean/std.

* train: ``RandomResizedCrop(size, scale=(0.08, 1), bicubic)`` → ``RandomHorizontalFlip()`` →
  ``ToTensor()`` → ``Normalize(mean, std)``;
* test: ``Resize(max(size), bicubic)`` (shorter side) → ``CenterCrop(size)`` → ``ToTensor()`` →
  ``Normalize(mean, std)``.

These differ from ``open_clip``'s own ``preprocess_train`` (whose RandomResizedCrop uses scale
(0.9, 1.0)); use these for numbers comparable with the papers.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from torchvision import transforms as T

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "INTERPOLATION_MODES",
    "build_train_transform",
    "build_test_transform",
    "build_transform",
]

#: OpenAI CLIP pixel statistics (Dassl ``INPUT.PIXEL_MEAN``/``PIXEL_STD`` in the CoOp configs).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

INTERPOLATION_MODES: dict[str, T.InterpolationMode] = {
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
    "nearest": T.InterpolationMode.NEAREST,
}

Size = int | Sequence[int]


def _size(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        out = (size, size)
    else:
        out = tuple(int(s) for s in size)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return out  # type: ignore[return-value]


def _interp(name: str) -> T.InterpolationMode:
    try:
        return INTERPOLATION_MODES[name]
    except KeyError:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATION_MODES)}, got {name!r}") from None


def build_train_transform(
    *,
    size: Size = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    scale: tuple[float, float] = (0.08, 1.0),
    interpolation: str = "bicubic",
    hflip: bool = True,
) -> Callable:
    """Training transform: random resized crop, horizontal flip, to tensor, normalize.

    Parameters
    ----------
    size:
        Output size, an int (square) or ``(height, width)``.
    mean, std:
        Per-channel normalisation (default: CLIP's).
    scale:
        Area range of ``RandomResizedCrop`` (Dassl ``INPUT.RRCROP_SCALE``).
    interpolation:
        ``"bicubic"`` (default), ``"bilinear"`` or ``"nearest"``.
    hflip:
        Include ``RandomHorizontalFlip(p=0.5)``.

    Returns
    -------
    torchvision.transforms.Compose
        Maps a PIL RGB image to a float tensor of shape ``(3, height, width)``.
    """
    steps: list[Callable] = [T.RandomResizedCrop(_size(size), scale=scale, interpolation=_interp(interpolation))]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))]
    return T.Compose(steps)


def build_test_transform(
    *,
    size: Size = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    interpolation: str = "bicubic",
) -> Callable:
    """Evaluation transform: resize the shorter side to ``max(size)``, center crop, to tensor, normalize.

    Parameters
    ----------
    size, mean, std, interpolation:
        As in :func:`build_train_transform`.

    Returns
    -------
    torchvision.transforms.Compose
        Maps a PIL RGB image to a float tensor of shape ``(3, height, width)``.
    """
    hw = _size(size)
    return T.Compose(
        [
            T.Resize(max(hw), interpolation=_interp(interpolation)),
            T.CenterCrop(hw),
            T.ToTensor(),
            T.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def build_transform(split: Literal["train", "test"], **options) -> Callable:
    """:func:`build_train_transform` for ``"train"``, else :func:`build_test_transform` (test/val)."""
    if split == "train":
        return build_train_transform(**options)
    if split in ("test", "val"):
        return build_test_transform(**options)
    raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
