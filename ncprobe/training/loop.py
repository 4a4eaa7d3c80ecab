"""The engine: one run of one seed, from a resolved config to its history.

Per epoch (Dassl's schedule): the learning rate of :func:`~.protocols.warmup_cosine_lr`; a batch order drawn
from a generator seeded by ``(seed, epoch)``; for every batch the method's logits, cross-entropy plus the
weighted regularizer terms, one SGD step (gradients averaged over ranks, :mod:`.distributed`); a NaN guard
that stops with a clear message; then evaluation and NC tracking (:mod:`.tracking`) when due, a history
record (:mod:`.history`) and an atomic checkpoint (:mod:`.checkpoint`). Epoch 0 records the initial prompts.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ncprobe.core.groups import assign_groups

from .checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, average_gradients, shard
from .feature_bank import FeatureBank, autocast_context, encode_images
from .history import EpochRecord, record_evaluation
from .protocols import warmup_cosine_lr
from .regularizers import SetupContext, StepOutput
from .tb_writer import open_writer
from .tracking import evaluate_set

__all__ = ["TrainingDivergedError", "RunPlan", "Engine", "SUMMARY_METRICS"]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, the step and what to try."""


def _divergence_advice(precision: str) -> str:
    """What to try after a non-finite loss, for the run's precision."""
    if precision == "fp32":
        return (
            "the run is already fp32: lower the learning rate (--optim.lr) or a regularizer's weight, and check "
            "the data for broken images"
        )
    return (
        f"precision={precision!r}: CLIP text towers are known to overflow in half precision; try "
        "--model.precision fp32 (or bf16 instead of fp16), or a lower learning rate (--optim.lr)"
    )


@dataclass
class RunPlan:
    """Everything the engine needs, resolved from the config (see :mod:`ncprobe.training.api`)."""

    model: torch.nn.Module
    task: object
    regularizers: list  # [(name, weight, Regularizer)]
    method: str
    conditional: bool
    frozen_image_features: bool
    use_bank: bool
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: int
    warmup_lr: float
    max_steps: int | None
    seed: int
    device: torch.device
    precision: str
    augment_views: int
    eval_batch_size: int
    num_workers: int
    track_every: int
    center: bool
    max_pair_classes: int
    max_per_class: int | None
    imbalanced: bool
    config_hash: str
    run_dir: Path | None
    resume: bool
    progress: bool | None
    info: DistInfo = field(default_factory=DistInfo)
    eval_every: int = 1  # track.eval_every: accuracy every this many epochs (always at NC-tracked epochs)
    tensorboard: bool = False  # track.tensorboard: each epoch's scalars to event files in run_dir (rank 0)


class Engine:
    """Trains and tracks one seed (see the module docstring)."""

    def __init__(self, plan: RunPlan):
        self.p = plan
        self.model = plan.model
        self.task = plan.task
        self.params = [q for q in self.model.parameters() if q.requires_grad]
        self.optimizer = (
            torch.optim.SGD(self.params, lr=plan.lr, momentum=plan.momentum, weight_decay=plan.weight_decay)
            if self.params
            else None
        )
        self.records: list[EpochRecord] = []
        self._tb = None  # the TensorBoard writer while run() runs with track.tensorboard
        self.bank: FeatureBank | None = None
        self.eval_models: dict = {}
        self.step = 0
        counts = self.task.train_counts
        self.train_groups = assign_groups(counts) if plan.imbalanced else None

    # ------------------------------------------------------------------ setup
    def _frozen_encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.clip.encode_image(images)

    def _encode_frozen(self, dataset, normalize: bool = True):
        from ncprobe.core.geometry import normalize_rows

        f, y = encode_images(
            self._frozen_encode,
            dataset,
            batch_size=self.p.eval_batch_size,
            device=self.p.device,
            precision=self.p.precision,
            info=self.p.info,
            progress=self.p.progress,
            num_workers=self.p.num_workers,
        )
        return (normalize_rows(f) if normalize else f), y

    def setup(self) -> None:
        p = self.p
        if p.use_bank:
            self.bank = FeatureBank.build(
                lambda x: self.model.encode_image(x),
                self.task,
                views=p.augment_views,
                seed=p.seed,
                batch_size=p.eval_batch_size,
                device=p.device,
                precision=p.precision,
                info=p.info,
                progress=p.progress,
                num_workers=p.num_workers,
            )
        train_feats = (
            (self.bank.view(1), self.bank.train_labels)
            if self.bank is not None and p.augment_views == 0 and p.frozen_image_features
            else None
        )
        ctx = SetupContext(
            model=self.model,
            task=self.task,
            train_features=train_feats,
            encode_frozen_images=self._encode_frozen,
            device=p.device,
            seed=p.seed,
            method=p.method,
        )
        for _, _, reg in p.regularizers:
            reg.to(p.device)
            reg.setup(ctx)

    # ------------------------------------------------------------------ one epoch
    def _order(self, epoch: int, n: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(int(self.p.seed) * 100003 + int(epoch))
        order = torch.randperm(n, generator=g)
        b = self.p.batch_size
        batches = [order[i : i + b] for i in range(0, n, b)]
        if n >= b and len(batches[-1]) < b:  # Dassl drops the last incomplete batch when len(data) >= batch size
            batches = batches[:-1]
        return batches

    def _batch_images(self, dataset, idx: torch.Tensor) -> torch.Tensor:
        return torch.stack([dataset[int(i)][0] for i in idx]).to(self.p.device)

    def _target_batch(self, size: int, epoch: int, step: int) -> torch.Tensor | None:
        if self.task.ood is None:
            return None
        g = torch.Generator().manual_seed(int(self.p.seed) * 7 + epoch * 100003 + step)
        m = len(self.task.ood) if self.bank is None or self.bank.ood is None else self.bank.ood.shape[0]
        idx = torch.randint(0, m, (size,), generator=g)
        if self.bank is not None and self.bank.ood is not None:
            return self.bank.ood[idx.to(self.bank.ood.device)]
        return self.model.encode_image(self._batch_images(self.task.ood, idx))

    def train_epoch(self, epoch: int, lr: float) -> tuple[dict, float]:
        p, model = self.p, self.model
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        model.train()
        n = len(self.task.train_labels)
        sums: dict[str, float] = {}
        correct = seen = 0
        batches = self._order(epoch, n)
        bar = tqdm(batches, desc=f"epoch {epoch}/{p.epochs}", leave=False, disable=p.info.bar_disable(p.progress))
        for idx in bar:
            if p.max_steps is not None and self.step >= p.max_steps:
                break
            local = shard(idx, p.info)
            labels = self.task.train_labels[local].to(p.device)
            with autocast_context(p.precision, p.device):
                images = None
                if self.bank is not None:
                    img = self.bank.view(epoch)[local.to(self.bank.train.device)]
                else:
                    source = self.task.train_augmented or self.task.train
                    images = self._batch_images(source, local)
                    img = model.encode_image(images)
                text = model.encode_text(img if p.conditional else None)
                logits = model.compute_logits(img, text)
                terms = {"loss_ce": F.cross_entropy(logits.float(), labels)}
                out = StepOutput(
                    image_features=img,
                    text_features=text,
                    logits=logits,
                    labels=labels,
                    logit_scale=model.logit_scale,
                    model=model,
                    classnames=self.task.train_classnames,
                    target_features=self._target_batch(len(local), epoch, self.step),
                    indices=local,
                    images=images,
                    epoch=epoch,
                    step=self.step,
                )
                total = terms["loss_ce"]
                for name, weight, reg in p.regularizers:
                    for term, value in reg(out).items():
                        terms[f"loss_{name}_{term}"] = value.float()
                        total = total + weight * reg.term_weight(term) * value.float()
            if not bool(torch.isfinite(total)):
                raise TrainingDivergedError(
                    f"the loss became {float(total.detach())} at epoch {epoch}, step {self.step} (terms: "
                    f"{ {k: round(float(v.detach()), 4) for k, v in terms.items()} }); "
                    f"{_divergence_advice(p.precision)}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            average_gradients(self.params, p.info)
            self.optimizer.step()
            self.step += 1
            terms["loss"] = total
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(local)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(local)
            bar.set_postfix(
                {k.removeprefix("loss_"): f"{float(v.detach()):.3f}" for k, v in terms.items()}, refresh=False
            )
        bar.close()
        stats = torch.tensor([correct, seen, *sums.values()], dtype=torch.float64)
        if p.info.active:
            import torch.distributed as dist

            stats = stats.to(p.device)
            dist.all_reduce(stats)
            stats = stats.cpu()
        seen_all = max(float(stats[1]), 1.0)
        losses = {k: float(v) / seen_all for k, v in zip(sums, stats[2:])}
        return losses, float(stats[0]) / seen_all

    # ------------------------------------------------------------------ evaluation
    def _model_for(self, es):
        if list(es.classnames) == list(self.task.train_classnames):
            return self.model
        if es.name not in self.eval_models:
            names = es.class_texts if es.class_texts is not None else es.classnames
            self.eval_models[es.name] = self.model.with_classnames(names)
        other = self.eval_models[es.name]
        if self.model.prompt_learner is not None:
            other.prompt_learner.load_context(self.model.prompt_learner.state_dict())
        return other

    def _features(self, es) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bank is not None:
            f, y = self.bank.eval[es.name]
        else:
            f, y = encode_images(
                lambda x: self.model.encode_image(x),
                es.dataset,
                batch_size=self.p.eval_batch_size,
                device=self.p.device,
                precision=self.p.precision,
                info=self.p.info,
                progress=self.p.progress,
                desc=f"eval {es.name}",
                num_workers=self.p.num_workers,
            )
        if self.p.max_per_class is not None:
            keep = torch.cat([torch.nonzero(y == k).flatten()[: self.p.max_per_class] for k in range(es.num_classes)])
            f, y = f[keep.sort().values], y[keep.sort().values]
        return shard_rows(f, self.p.info), shard_rows(y, self.p.info)

    def evaluate(self, rec: EpochRecord, *, track: bool) -> None:
        self.model.eval()
        num_global = len(self.task.classnames)
        for es in self.task.eval_sets:
            feats, labels = self._features(es)
            groups = None
            if self.train_groups is not None and list(es.classnames) == list(self.task.train_classnames):
                groups = self.train_groups
            with torch.no_grad(), autocast_context(self.p.precision, self.p.device):
                result = evaluate_set(
                    self._model_for(es),
                    es.name,
                    feats,
                    labels,
                    info=self.p.info,
                    track=track,
                    groups=groups,
                    center=self.p.center,
                    class_names=es.classnames,
                    conditional=self.p.conditional,
                )
            record_evaluation(
                rec,
                es.name,
                result.accuracy,
                result.report,
                es.class_index,
                num_global,
                pairs=num_global <= self.p.max_pair_classes,
            )

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int) -> dict:
        learner = self.model.prompt_learner
        return {
            "epoch": epoch,
            "step": self.step,
            "config_hash": self.p.config_hash,
            "learner": None if learner is None else learner.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "regularizers": {name: reg.state_dict() for name, _, reg in self.p.regularizers},
            "records": self.records,
            "rng": rng_state(),
        }

    def _restore(self, state: dict) -> int:
        if state["learner"] is not None:
            self.model.prompt_learner.load_state_dict(state["learner"])
        if state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        for name, _, reg in self.p.regularizers:
            reg.load_state_dict(state["regularizers"].get(name, {}), strict=False)
        self.records = list(state["records"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        return int(state["epoch"])

    # ------------------------------------------------------------------ the run
    def run(self) -> list[EpochRecord]:
        p = self.p
        random.seed(p.seed)
        np.random.seed(p.seed % 2**32)
        torch.manual_seed(p.seed)
        start = 1
        if p.resume and p.run_dir is not None and (last := latest_checkpoint(p.run_dir)) is not None:
            start = self._restore(load_checkpoint(last, config_hash=p.config_hash)) + 1  # restores the RNGs too
        self._tb = open_writer(p.run_dir) if p.tensorboard and p.run_dir is not None and p.info.is_main else None
        if start == 1:
            rec = EpochRecord(epoch=0)
            t0 = time.perf_counter()
            self.evaluate(rec, track=True)
            rec.seconds = time.perf_counter() - t0
            self.records.append(rec)
            self._summary(rec)
            if self._tb is not None:
                self._tb.write(rec)
        for epoch in range(start, p.epochs + 1):
            if p.max_steps is not None and self.step >= p.max_steps:
                break
            t0 = time.perf_counter()
            lr = warmup_cosine_lr(
                epoch - 1, base_lr=p.lr, epochs=p.epochs, warmup_epochs=p.warmup_epochs, warmup_lr=p.warmup_lr
            )
            losses, train_acc = self.train_epoch(epoch, lr)
            for _, _, reg in p.regularizers:
                reg.on_epoch_end(epoch, self.model)
            rec = EpochRecord(epoch=epoch, losses=losses, train_accuracy=train_acc, lr=lr)
            last = epoch == p.epochs or (p.max_steps is not None and self.step >= p.max_steps)
            if last:
                for _, _, reg in p.regularizers:
                    reg.on_train_end(self.model)
            track = last or epoch % p.track_every == 0
            if track or epoch % p.eval_every == 0:  # accuracy on the other epochs is NaN in the history
                self.evaluate(rec, track=track)
            rec.seconds = time.perf_counter() - t0
            self.records.append(rec)
            self._summary(rec)
            if self._tb is not None:
                self._tb.write(rec)
            if p.run_dir is not None and p.info.is_main:
                save_checkpoint(checkpoint_path(p.run_dir, epoch), self._state(epoch))
        if self._tb is not None:
            self._tb.close()
        return self.records

    def _summary(self, rec: EpochRecord) -> None:
        """One line per epoch on rank 0, with or without bars (``progress=None`` draws bars only on a terminal,
        and a logged run still reads epoch by epoch; ``progress=False`` is a quiet run: no bars, no lines): loss,
        accuracies (and their harmonic mean on base-to-novel), and the NC metrics that can move for the method
        (:data:`SUMMARY_METRICS`)."""
        if not self.p.info.is_main or self.p.progress is False:
            return
        acc = "  ".join(f"{k} {v:.3f}" for k, v in rec.accuracy.items())
        hm = ""
        if "base" in rec.accuracy and "novel" in rec.accuracy:
            b, n = rec.accuracy["base"], rec.accuracy["novel"]
            hm = f"  hm {2 * b * n / (b + n) if b + n > 0 else 0.0:.3f}"
        loss = (
            "" if not rec.losses else f"loss {rec.losses.get('loss', math.nan):.4f}  train {rec.train_accuracy:.3f}  "
        )
        nc_txt = "  ".join(
            f"{label}[{k}] {v:.3g}"
            for metric, label in SUMMARY_METRICS[self.p.frozen_image_features]
            for k, v in rec.scalars.get(metric, {}).items()
        )
        tqdm.write(f"epoch {rec.epoch:>3}/{self.p.epochs}  {loss}{acc}{hm}  {nc_txt}  ({rec.seconds:.1f} s)")


#: NC metrics of the per-epoch line, by whether the image tower is frozen and unprompted. Frozen (CoOp, CoCoOp,
#: zero-shot): the image features, hence image-side NC1, cannot change, so the line shows what the prompts move,
#: the text ETF error and the text-to-image ETF error. Prompted (MaPLe, IVLP): image NC1 and the cross-modal error.
SUMMARY_METRICS: dict[bool, tuple[tuple[str, str], ...]] = {
    True: (("t2i_text_etf_error", "text_etf"), ("t2i_cross_etf_error", "cross_etf")),
    False: (("nc1", "nc1"), ("t2i_cross_etf_error", "cross_etf")),
}


def shard_rows(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous part of the rows of ``x``."""
    if not info.active:
        return x
    return torch.tensor_split(x, info.world_size)[info.rank]
