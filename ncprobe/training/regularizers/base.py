"""The regularizer interface: a term receives what the step computed and returns named losses.

A regularizer is an ``nn.Module`` (so it can hold buffers such as anchors or an ETF, move with the model,
and be checkpointed through ``state_dict``) with

* :meth:`Regularizer.setup` — called once per run, before training, with a :class:`SetupContext` (the model,
  the task, frozen training features when available, the device, the seed); it computes whatever is fixed:
  frozen hand-written prompt features, static anchors, a target ETF;
* :meth:`Regularizer.forward` — called every step with a :class:`StepOutput`; returns ``{term: loss}``
  (unweighted 0-d tensors). The engine multiplies each term by the regularizer's weight, adds it to the
  cross-entropy, and records every term per epoch as ``loss_<name>_<term>`` (unweighted);
* :meth:`Regularizer.on_epoch_end` / :meth:`Regularizer.on_train_end` — hooks after each epoch and after the
  last one (PromptSRC's prompt aggregation replaces the prompts at the end);
* :meth:`Regularizer.info` — a JSON-ready dict for the run's ``result.json`` (e.g. "a near-ETF was used");
* :meth:`Regularizer.term_weight` — the weight of one of its terms inside the regularizer (default 1; e.g.
  PromptSRC's 25/10/1). The engine adds ``weight · term_weight(term) · value`` to the loss and still records
  the unweighted value, so the history shows the loss itself;
* :meth:`Regularizer.check` — config-level checks before any work (``ncprobe.training.validate_config``):
  options that contradict the method, the data or each other (a fixed ETF of the wrong shape, an MMD term
  without a target set).

``needs`` and ``methods`` are class attributes an instance may narrow from its options (Craft needs a target
set only when its MMD term is on); the config checks read them from the instance.

Register a class with :func:`register_regularizer`; :data:`REGULARIZERS` maps names to classes and an
unknown name lists the valid ones (:func:`build_regularizer`).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["Regularizer", "SetupContext", "StepOutput", "REGULARIZERS", "register_regularizer", "build_regularizer"]


@dataclass
class SetupContext:
    """What a regularizer may use once, before training.

    Attributes
    ----------
    model:
        The model being trained (``PromptedCLIP``; its frozen CLIP is ``model.clip``).
    task:
        The :class:`~ncprobe.training.tasks.Task` (training class names, templates, class texts, targets).
    train_features:
        Frozen (unprompted) normalised image features of the training set (N, d) and their labels, or
        ``None`` when the engine has not computed them (the regularizer may call ``encode_frozen_images``).
    encode_frozen_images:
        Callable ``dataset -> (features, labels)`` running the frozen, unprompted image tower; the features are
        L2-normalised, or the tower's raw output with ``normalize=False`` (Craft's ``anchor_average="raw"``).
    device:
        Where the run computes.
    seed:
        The run seed.
    method:
        The method name (``"coop"``, ``"maple"``, …).
    """

    model: nn.Module
    task: Any
    train_features: tuple[torch.Tensor, torch.Tensor] | None
    encode_frozen_images: Any
    device: torch.device
    seed: int
    method: str


@dataclass
class StepOutput:
    """What one training step computed, handed to every regularizer.

    Attributes
    ----------
    image_features:
        (B, d) L2-normalised (prompted) image features of the batch.
    text_features:
        (C, d) L2-normalised class text features of the current prompts ((B, C, d) for CoCoOp).
    logits:
        (B, C) scaled cosine logits.
    labels:
        (B,) class labels.
    logit_scale:
        CLIP's ``logit_scale.exp()``.
    model:
        The model (to encode sentences through the prompted text encoder, e.g. Craft's stochastic anchors).
    classnames:
        The training class names (index = label).
    target_features:
        (B', d) normalised image features of an unlabelled target batch, when the task has one.
    indices:
        (B,) indices of the batch's images in the task's training set.
    images:
        (B, 3, H, W) the batch's input images when the image tower ran this step (``None`` when the features
        came from the frozen-feature bank).
    epoch, step:
        1-based epoch and global step.
    extra:
        Method-specific tensors.
    """

    image_features: torch.Tensor
    text_features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    logit_scale: torch.Tensor
    model: nn.Module
    classnames: list[str]
    target_features: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    images: torch.Tensor | None = None
    epoch: int = 0
    step: int = 0
    extra: dict = field(default_factory=dict)


class Regularizer(nn.Module):
    """Base class of a loss term (see the module docstring)."""

    #: Registry name.
    name: ClassVar[str] = ""
    #: Inputs beyond the step's features: ``"target"`` (an unlabelled target set), ``"train_features"``.
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Methods it applies to (``None``: any).
    methods: ClassVar[frozenset[str] | None] = None

    def setup(self, ctx: SetupContext) -> None:
        """Compute what stays fixed during training (default: nothing)."""

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Called after each training epoch (before evaluation), e.g. to record prompt snapshots."""

    def on_train_end(self, model: nn.Module) -> None:
        """Called once after the last epoch, before the final evaluation is recorded (e.g. to replace the
        prompts by an aggregate of their epochs, as PromptSRC's Gaussian prompt aggregation does)."""

    def info(self) -> dict:
        """JSON-ready facts about this term for ``result.json``."""
        return {}

    def term_weight(self, term: str) -> float:
        """Weight of ``term`` inside this regularizer (the engine multiplies it with the regularizer's weight)."""
        return 1.0

    def check(self, config: Any) -> None:
        """Raise ``ValueError`` when the options do not fit ``config`` (a ``TrainConfig``); called before any
        model or data is loaded. Default: nothing to check."""

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


REGULARIZERS: dict[str, type[Regularizer]] = {}


def register_regularizer(cls: type[Regularizer]) -> type[Regularizer]:
    """Class decorator adding ``cls`` to :data:`REGULARIZERS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty name")
    REGULARIZERS[cls.name] = cls
    return cls


def build_regularizer(name: str, options: dict | None = None) -> Regularizer:
    """Instantiate a registered regularizer; an unknown name or option raises ``ValueError`` listing the
    valid ones."""
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {name!r}; valid regularizers: {', '.join(sorted(REGULARIZERS))}")
    cls = REGULARIZERS[name]
    params = inspect.signature(cls.__init__).parameters
    if not any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values()):
        valid = [q for q in params if q != "self"]
        unknown = []
        for key in options or {}:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                unknown.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if unknown:
            raise ValueError(
                f"bad options for regularizer {name!r}: unknown option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; valid options: {', '.join(valid) or 'none'}"
            )
    try:
        return cls(**(options or {}))
    except TypeError as err:
        raise ValueError(f"bad options for regularizer {name!r}: {err}") from None
