"""Frozen image features computed once, when the image tower is neither trained nor prompted.

For zero-shot CLIP, CoOp, CoCoOp and any regularizer on them, an image's feature never changes during
training, so the engine encodes each image once and trains on the stored features; an epoch then costs
only the text tower. With ``data.augment_views = K > 0`` the bank holds K augmented views of every training
image (view k drawn with torch's generator seeded ``(seed, k)``), and epoch e uses view ``(e − 1) mod K``
for every image: a documented approximation of fresh per-epoch augmentation (exact when K ≥ epochs and each
epoch gets its own view, which is what CoOp's few epochs over 16 shots need). Evaluation sets are encoded
once as well.

:func:`encode_images` is the batched, no-grad, autocast forward shared by the bank and by the plain loop.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .distributed import DistInfo, all_gather_rows, shard

__all__ = ["FeatureBank", "encode_images", "autocast_context"]


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``bf16``/``fp16`` on the run's device; nothing for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def encode_images(
    encode,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    info: DistInfo | None = None,
    progress: bool | None = False,
    desc: str = "images",
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``encode(images)`` over ``dataset`` (this rank's shard, gathered over ranks) → (float32 features, labels).

    Features stay on ``device``; labels are int64 on ``device``.
    """
    info = info or DistInfo()
    idx = shard(torch.arange(len(dataset)), info)
    subset = torch.utils.data.Subset(dataset, idx.tolist())
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, labels = [], []
    with torch.no_grad(), autocast_context(precision, device):
        for images, y in tqdm(loader, desc=desc, leave=False, disable=info.bar_disable(progress)):
            feats.append(encode(images.to(device)).float())
            labels.append(torch.as_tensor(y, dtype=torch.int64).to(device))
    d = feats[0].shape[1] if feats else 0
    f = torch.cat(feats) if feats else torch.empty(0, d, device=device)
    y = torch.cat(labels) if labels else torch.empty(0, dtype=torch.int64, device=device)
    return all_gather_rows(f, info), all_gather_rows(y, info)


@dataclass
class FeatureBank:
    """Stored normalised image features: K training views, the evaluation sets, and the target set."""

    train: torch.Tensor  # (K, N, d)
    train_labels: torch.Tensor  # (N,)
    eval: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    ood: torch.Tensor | None = None  # (M, d)

    @property
    def views(self) -> int:
        return self.train.shape[0]

    def view(self, epoch: int) -> torch.Tensor:
        """The training features used in (1-based) ``epoch``."""
        return self.train[(epoch - 1) % self.views]

    @classmethod
    def build(
        cls,
        encode,
        task,
        *,
        views: int,
        seed: int,
        batch_size: int,
        device: torch.device,
        precision: str,
        info: DistInfo,
        progress: bool | None,
        num_workers: int = 0,
    ) -> FeatureBank:
        """Encode the task's training views, evaluation sets and target set once (see the module docstring)."""
        kw = dict(
            batch_size=batch_size,
            device=device,
            precision=precision,
            info=info,
            progress=progress,
            num_workers=num_workers,
        )
        train_views = []
        source = task.train if views == 0 else task.train_augmented
        for k in range(max(1, views)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed) * 1000 + k)
                feats, labels = encode_images(encode, source, desc=f"train view {k + 1}", **kw)
            train_views.append(feats)
        bank = cls(torch.stack(train_views), labels)
        for es in task.eval_sets:
            bank.eval[es.name] = encode_images(encode, es.dataset, desc=f"eval {es.name}", **kw)
        if task.ood is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed) * 1000 + 999)
                bank.ood = encode_images(encode, task.ood, desc="target", **kw)[0]
        return bank
