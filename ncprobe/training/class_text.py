"""Class text made of several sentences per class (the embedded benchmark's description protocol).

When a task carries ``class_texts`` (one list of sentences per class, e.g. the testbed's descriptions), a
class's text feature is the mean of its sentences' L2-normalised features, re-normalised (CLIP's ensemble
rule):

* zero-shot: the sentences themselves (:func:`sentence_class_features`);
* prompt learners: every sentence becomes a prompt ``"<ctx> <sentence>."`` of one shared learner (the
  sentence stands where CoOp puts the class name) and :class:`ClassTextEnsemble` averages each class's
  prompts, so the context is learned once for all sentences and transfers to novel classes' sentences.

:func:`handwritten_class_features` is "the hand-written class text" of a task for the terms that compare with
it (KgCoOp, NPT's zero-shot ETF): the sentences' mean under this protocol, the template otherwise.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ncprobe.core.geometry import normalize_rows
from ncprobe.models import CLIPBundle
from ncprobe.models.features import text_features

from .zeroshot import ZeroShotCLIP

__all__ = [
    "ClassTextEnsemble",
    "SentenceZeroShot",
    "sentence_class_features",
    "handwritten_class_features",
    "flatten_sentences",
]


def flatten_sentences(
    class_texts: Sequence[Sequence[str]], *, for_prompts: bool = False
) -> tuple[list[str], torch.Tensor]:
    """All sentences and the class of each; ``for_prompts`` drops trailing periods (prompts add their own)."""
    sentences, owner = [], []
    for k, texts in enumerate(class_texts):
        if not texts:
            raise ValueError(f"class {k} has no sentences")
        for t in texts:
            sentences.append(t.strip().rstrip(".") if for_prompts else t)
            owner.append(k)
    return sentences, torch.tensor(owner, dtype=torch.int64)


def _group_mean(feats: torch.Tensor, owner: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Normalised mean over each class's rows along dimension -2 ((S, d) or (B, S, d) → (C, d) or (B, C, d))."""
    unit = normalize_rows(feats)
    owner = owner.to(feats.device)
    shape = (*unit.shape[:-2], num_classes, unit.shape[-1])
    sums = torch.zeros(shape, dtype=unit.dtype, device=unit.device).index_add_(-2, owner, unit)
    return normalize_rows(sums)


def sentence_class_features(
    bundle: CLIPBundle, class_texts: Sequence[Sequence[str]], *, device: torch.device | None = None
) -> torch.Tensor:
    """(C, d) class features: the normalised mean of each class's normalised sentence features."""
    sentences, owner = flatten_sentences(class_texts)
    feats = text_features(bundle, sentences, "{}", normalize=True, device=device)
    return _group_mean(feats, owner, len(class_texts))


def handwritten_class_features(task, bundle: CLIPBundle, *, device: torch.device | None = None) -> torch.Tensor:
    """The task's hand-written class text features (C_train, d), normalised (see the module docstring)."""
    if task.train_class_texts is not None:
        return sentence_class_features(bundle, task.train_class_texts, device=device)
    return text_features(bundle, task.train_classnames, task.templates, normalize=True, device=device)


class ClassTextEnsemble(nn.Module):
    """A prompted model over sentences, presenting one text feature per class (see the module docstring).

    It forwards everything to the wrapped :class:`~ncprobe.models.PromptedCLIP` and reduces the text features
    of its sentence prompts to their class means.
    """

    def __init__(self, inner: nn.Module, class_texts: Sequence[Sequence[str]]):
        super().__init__()
        self.inner = inner
        self.class_texts = [list(t) for t in class_texts]
        _, owner = flatten_sentences(self.class_texts)
        self.register_buffer("owner", owner, persistent=False)

    # the interface of PromptedCLIP
    @property
    def prompt_learner(self):
        return self.inner.prompt_learner

    @property
    def clip(self):
        return self.inner.clip

    @property
    def bundle(self) -> CLIPBundle:
        return self.inner.bundle

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.inner.logit_scale

    def train(self, mode: bool = True) -> ClassTextEnsemble:
        self.training = mode
        self.inner.train(mode)
        return self

    def encode_image(self, images: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        return self.inner.encode_image(images, normalize=normalize)

    def encode_text(self, image_features: torch.Tensor | None = None, *, normalize: bool = True) -> torch.Tensor:
        feats = self.inner.encode_text(image_features, normalize=True)
        return _group_mean(feats, self.owner, len(self.class_texts))

    def encode_sentences(self, texts, *, normalize: bool = True) -> torch.Tensor:
        return self.inner.encode_sentences(texts, normalize=normalize)

    def compute_logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.inner.compute_logits(image_features, text_features)

    def with_classnames(self, class_texts: Sequence[Sequence[str]]) -> ClassTextEnsemble:
        sentences, _ = flatten_sentences(class_texts, for_prompts=True)
        return ClassTextEnsemble(self.inner.with_classnames(sentences), class_texts)


class SentenceZeroShot(ZeroShotCLIP):
    """Zero-shot CLIP whose class text is the mean of each class's sentences (the interface of PromptedCLIP)."""

    def __init__(self, bundle: CLIPBundle, class_texts: Sequence[Sequence[str]]):
        nn.Module.__init__(self)
        self.class_texts = [list(t) for t in class_texts]
        self._freeze(bundle, sentence_class_features(bundle, self.class_texts, device=bundle.device))

    def with_classnames(self, class_texts: Sequence[Sequence[str]]) -> SentenceZeroShot:
        return SentenceZeroShot(self.bundle, class_texts)
