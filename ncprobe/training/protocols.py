"""Protocols and their published hyper-parameters, in one object per (method, protocol, dataset).

Shell scripts with mismatched epochs are a known failure of the public code (Craft's base-to-novel test
script loads epoch 20 of a 5-epoch run; CoOp issue #27 mixed CoOp and CoCoOp settings). Here one table holds
the epochs, batch size, learning rate and evaluation epoch of every method under every protocol, the
evaluation epoch is always the last trained epoch, and dataset-specific exceptions are explicit.

Sources (the configs of the original repositories, read for ``/work/shared/reference``):

* CoOp few-shot: ``configs/trainers/CoOp/vit_b16.yaml`` — batch 32, lr 0.002, 200 epochs (ImageNet:
  ``vit_b16_ep50.yaml``, 50), 16 random context tokens.
* CoOp base-to-novel / cross-dataset: ``vit_b16_ctxv1.yaml`` — 4 tokens from "a photo of a", batch 32,
  lr 0.002, 200 epochs (ImageNet ``vit_b16_ep50_ctxv1.yaml``: 50); CoOp issue #70.
* CoCoOp: ``vit_b16_c4_ep10_batch1_ctxv1.yaml`` — batch 1, lr 0.002, 10 epochs.
* MaPLe: ``vit_b16_c2_ep5_batch4_2ctx.yaml`` — batch 4, lr 0.0035, 5 epochs, depth 9; cross-dataset and
  domain generalisation ``..._cross_datasets.yaml``: depth 3, lr 0.0026, 2 epochs.
* IVLP (PromptSRC repository): ``vit_b16_c2_ep20_batch4_4+4ctx.yaml`` — batch 4, lr 0.0025, 20 epochs,
  depth 9 (cross-dataset: depth 3).
* Common: SGD momentum 0.9, weight decay 5e-4, cosine schedule after one constant warm-up epoch at 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROTOCOLS", "Hyperparameters", "published", "warmup_cosine_lr"]

PROTOCOLS = ("few_shot", "base_to_novel", "cross_dataset", "domain_generalization")


@dataclass(frozen=True)
class Hyperparameters:
    """Optimisation settings of one (method, protocol, dataset); ``eval_epoch`` is always ``epochs``."""

    epochs: int
    batch_size: int
    lr: float
    method_options: tuple[tuple[str, object], ...] = ()

    @property
    def eval_epoch(self) -> int:
        return self.epochs


_TABLE: dict[tuple[str, str], Hyperparameters] = {
    ("zeroshot", "*"): Hyperparameters(0, 32, 0.0),
    ("coop", "few_shot"): Hyperparameters(200, 32, 0.002, (("n_ctx", 16), ("ctx_init", ""))),
    ("coop", "base_to_novel"): Hyperparameters(200, 32, 0.002),
    ("coop", "cross_dataset"): Hyperparameters(50, 32, 0.002),
    ("coop", "domain_generalization"): Hyperparameters(50, 32, 0.002),
    ("cocoop", "*"): Hyperparameters(10, 1, 0.002),
    ("maple", "few_shot"): Hyperparameters(5, 4, 0.0035),
    ("maple", "base_to_novel"): Hyperparameters(5, 4, 0.0035),
    ("maple", "cross_dataset"): Hyperparameters(2, 4, 0.0026, (("prompt_depth", 3),)),
    ("maple", "domain_generalization"): Hyperparameters(2, 4, 0.0026, (("prompt_depth", 3),)),
    ("ivlp", "few_shot"): Hyperparameters(20, 4, 0.0025),
    ("ivlp", "base_to_novel"): Hyperparameters(20, 4, 0.0025),
    ("ivlp", "cross_dataset"): Hyperparameters(20, 4, 0.0025, (("prompt_depth", 3),)),
    ("ivlp", "domain_generalization"): Hyperparameters(20, 4, 0.0025, (("prompt_depth", 3),)),
}

#: Dataset-specific exceptions: (method, protocol, dataset) → epochs.
_EPOCHS_BY_DATASET = {
    ("coop", "few_shot", "ImageNet"): 50,
    ("coop", "base_to_novel", "ImageNet"): 50,
}


def published(method: str, protocol: str, dataset: str | None = None) -> Hyperparameters:
    """The published settings of ``method`` under ``protocol`` (and ``dataset``, canonical CoOp name)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    hp = _TABLE.get((method, protocol)) or _TABLE.get((method, "*"))
    if hp is None:
        raise ValueError(f"no published settings for method {method!r}")
    epochs = _EPOCHS_BY_DATASET.get((method, protocol, dataset))
    if epochs is not None:
        hp = Hyperparameters(epochs, hp.batch_size, hp.lr, hp.method_options)
    return hp


def warmup_cosine_lr(epoch: int, *, base_lr: float, epochs: int, warmup_epochs: int, warmup_lr: float) -> float:
    r"""Learning rate of epoch ``epoch`` (0-based) under Dassl's ``ConstantWarmupScheduler`` + cosine.

    ``warmup_lr`` for ``epoch < W``, then ``base_lr · (1 + cos(π (epoch − W)/T))/2`` with T = ``epochs``:
    the cosine successor (``CosineAnnealingLR(T_max=MAX_EPOCH)``, ``WARMUP_RECOUNT=True``) starts counting
    when the warm-up ends, so the first post-warm-up epoch runs at ``base_lr`` (``dassl/optim/lr_scheduler.py``).

    >>> [round(warmup_cosine_lr(e, base_lr=1.0, epochs=4, warmup_epochs=1, warmup_lr=1e-5), 4) for e in range(4)]
    [0.0, 1.0, 0.8536, 0.5]
    """
    import math

    if epoch < warmup_epochs:
        return float(warmup_lr)
    return float(base_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / max(int(epochs), 1)))
