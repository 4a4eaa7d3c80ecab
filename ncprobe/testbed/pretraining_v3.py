"""Pretraining of the v3 image tower ("pretrain wide") and its zero-shot evaluation on the downstream tasks.

The recipe is v2's (:mod:`.pretraining`: locked MiniLM text tower, AdamW with warm-up and cosine decay, the
class-caption CLIP loss :func:`~ncprobe.testbed.pretraining.clip_class_caption_loss`), applied to
:func:`~ncprobe.testbed.benchmark_v3.pretraining_set`: every class of every downstream task, base and novel, in
the neutral style. Each step draws a batch of images and, for every class, one caption from its pool (the name
in :data:`~ncprobe.testbed.benchmark_v3.PRETRAIN_TEMPLATES` or one of its descriptions).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ncprobe.models.bundle import CLIPBundle
from ncprobe.testbed.benchmark_v3 import V3_TASKS, base_novel, load_task, pretraining_set
from ncprobe.testbed.images import to_model_input
from ncprobe.testbed.pretraining import (
    cached_sentence_embeddings,
    clip_class_caption_loss,
    optimizer_step,
    tower_optimizer,
    training_stats,
)
from ncprobe.testbed.texts import class_text_features

__all__ = ["train_wide_tower", "evaluate_tasks_zero_shot"]


def _subsample_per_class(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class (all of them when a class has fewer)."""
    return torch.cat([torch.nonzero(labels == c).squeeze(1)[:per_class] for c in labels.unique(sorted=True)])


def train_wide_tower(model, tokenizer, config, *, device: torch.device, progress: bool = True) -> dict:
    """Train ``model``'s image tower in place on v3's pretraining set (``config``: a v3 ``TestbedConfig``).

    Returns ``{"train_seconds", "prepare_seconds", "final_loss", "num_train_images", "num_classes",
    "num_captions", "num_threads", "logit_scale"}``.
    """
    prep_start = time.perf_counter()
    images, labels, captions = pretraining_set()
    keep = _subsample_per_class(labels, config.train_per_class)
    images, labels = images[keep], labels[keep]
    bundle = CLIPBundle(model, tokenizer, None, "ncprobe-testbed")
    ctx = int(getattr(tokenizer, "context_length", 0))
    flat = cached_sentence_embeddings(bundle, [c for row in captions for c in row], context_length=ctx).to(device)
    sizes = torch.tensor([len(row) for row in captions])
    starts = torch.cumsum(sizes, 0) - sizes
    prepare_seconds = time.perf_counter() - prep_start

    params, optimizer, scheduler = tower_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    model.visual.train()
    model.text.eval()
    order, cursor = torch.randperm(len(labels), generator=generator), 0
    loss = torch.tensor(float("nan"))
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc="testbed v3 image tower", disable=not progress, leave=False)
    for step in bar:
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(labels), generator=generator), 0
        idx = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        draw = (torch.rand(len(sizes), generator=generator) * sizes).long()
        targets = flat[starts + draw]
        emb = F.normalize(model.visual(to_model_input(images[idx]).to(device)), dim=-1)
        loss = clip_class_caption_loss(emb, targets, labels[idx].to(device), model.logit_scale)
        optimizer_step(model, loss, optimizer, scheduler, params)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return training_stats(
        model,
        loss,
        start=start,
        prepare_seconds=prepare_seconds,
        num_train_images=len(labels),
        num_classes=len(captions),
        num_captions=int(sizes.sum()),
        logit_scale_note="CLIP's is 100; scale prompt-tuning learning rates by about 100 / this value",
    )


@torch.no_grad()
def _encode(bundle: CLIPBundle, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model = bundle.model
    device = next(model.parameters()).device
    out = [model.encode_image(to_model_input(images[i : i + batch]).to(device)) for i in range(0, len(images), batch)]
    return F.normalize(torch.cat(out).float(), dim=-1).cpu()


def evaluate_tasks_zero_shot(bundle: CLIPBundle, *, splits=("val", "test"), tasks=None) -> dict:
    """Zero-shot accuracy of ``bundle`` on each downstream task with ``"a photo of a {}."``.

    Returns ``{task: {split: {"base", "novel", "all"}}}``: base and novel are CoOp's base-to-novel numbers (each
    half classified among its own classes), ``all`` among all the task's classes; rounded to 4 decimals.
    """
    out: dict = {}
    for name in tasks or V3_TASKS:
        base, novel = base_novel(name)
        out[name] = {}
        for split in splits:
            data = load_task(name, split)
            feats = _encode(bundle, data.images)
            text = class_text_features(bundle, [[data.template.format(n)] for n in data.classnames]).float().cpu()
            scores = {}
            for half, keep in (("base", base), ("novel", novel), ("all", base + novel)):
                keep_t = torch.tensor(keep)
                mask = torch.isin(data.labels, keep_t)
                logits = feats[mask] @ text[keep_t].T
                pred = keep_t[logits.argmax(1)]
                scores[half] = round(float((pred == data.labels[mask]).float().mean()), 4)
            out[name][split] = scores
    return out
