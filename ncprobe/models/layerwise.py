"""Intermediate features of both towers of an ``open_clip`` model, block by block (collapse across depth).

Forward hooks on the transformer blocks capture each block's output while the model runs its own
``encode_image`` / ``encode_text`` (so masks, positional embeddings and prompts are exactly the model's);
each captured sequence is reduced to one vector per input the way the tower pools its final layer:

* **image** (``visual.transformer.resblocks[i]`` of an open_clip ``VisionTransformer``): the class token
  (``pool_type="tok"``, CLIP's ViTs) or the mean of the patch tokens (``pool_type="avg"``);
* **native text** (``open_clip.CLIP``, or ``CustomTextCLIP`` with a ``TextTransformer``;
  ``transformer.resblocks[i]``): the token the tower pools: the end-of-text token (``argmax`` of the ids,
  OpenAI CLIP), the ``eos`` token, or the first / last token;
* **Hugging Face text** (``CustomTextCLIP`` with an ``HFTextEncoder``, e.g. the testbed's MiniLM; the
  encoder's layer list, ``encoder.layer[i]`` for BERT): the tower's own pooler applied to that layer's
  hidden states with the padding mask (mean pooling for the testbed; CLS pooling uses the layer's CLS
  state, BERT's pooler dense layer being for the last layer only).

With ``project=False`` (default) the features are the raw residual stream (width of the tower). With
``project=True`` each layer also goes through the tower's final norm and projection (``ln_post`` and
``proj``; ``ln_final`` and ``text_projection``; the HF ``proj``), the "logit lens" view: every layer is then
in the joint embedding space, and the last layer equals ``encode_image`` / ``encode_text`` exactly.

Layers are named by their 0-based block index (``layers=[-1]`` is the last block; keys are always the
non-negative index). Feed the features to :func:`ncprobe.measure` layer by layer and draw the reports with
:func:`ncprobe.plotting.layers_figure`.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from open_clip.hf_model import HFTextEncoder
from open_clip.transformer import TextTransformer, VisionTransformer, text_global_pool
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from ncprobe.core.geometry import normalize_rows

from .bundle import CLIPBundle

__all__ = [
    "UnsupportedLayerwiseModelError",
    "image_blocks",
    "text_blocks",
    "resolve_layers",
    "extract_layer_features",
    "text_layer_features",
]


class UnsupportedLayerwiseModelError(TypeError):
    """The model's tower has no block list or pooling that layer-wise extraction understands."""


# ------------------------------------------------------------------------------------------------ towers
def image_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of the image tower (``model.visual.transformer.resblocks``)."""
    visual = getattr(model, "visual", None)
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedLayerwiseModelError(
            f"layer-wise image features need an open_clip VisionTransformer image tower, got {type(visual).__name__}"
        )
    return visual.transformer.resblocks


def _text_tower(model: nn.Module):
    """(kind, tower) with kind ``"native"`` (CLIP: the model itself holds the text transformer), ``"tt"``
    (CustomTextCLIP with a TextTransformer) or ``"hf"``."""
    text = getattr(model, "text", None)
    if isinstance(text, HFTextEncoder):
        return "hf", text
    if isinstance(text, TextTransformer):
        if text.cls_emb is not None:
            raise UnsupportedLayerwiseModelError("text towers with an appended CLS embedding (CoCa) are not supported")
        return "tt", text
    if text is None and hasattr(model, "transformer") and hasattr(model, "token_embedding"):
        return "native", model
    raise UnsupportedLayerwiseModelError(f"unsupported text tower {type(text).__name__}")


def text_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks (layers) of the text tower."""
    kind, tower = _text_tower(model)
    if kind != "hf":
        return tower.transformer.resblocks
    hf = tower.transformer
    for path in ("encoder.layer", "encoder.layers", "encoder.block", "layers", "layer"):
        obj = hf
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, nn.ModuleList):
            return obj
    raise UnsupportedLayerwiseModelError(f"cannot find the layer list of {type(hf).__name__}")


def resolve_layers(layers: int | Sequence[int] | None, depth: int) -> list[int]:
    """Non-negative block indices from ``layers`` (``None``: all ``depth`` blocks; negatives count from the end).

    >>> resolve_layers([0, -1], 4)
    [0, 3]
    """
    if layers is None:
        return list(range(depth))
    items = [layers] if isinstance(layers, int) else list(layers)
    out = []
    for i in items:
        j = int(i) + depth if int(i) < 0 else int(i)
        if not 0 <= j < depth:
            raise IndexError(f"layer {i} does not exist: the tower has {depth} blocks (0..{depth - 1})")
        if j not in out:
            out.append(j)
    return out


@contextlib.contextmanager
def _capture(blocks: nn.ModuleList, indices: list[int]) -> Iterator[dict[int, torch.Tensor]]:
    """Forward hooks storing the output of ``blocks[i]`` (first element when a tuple) for each index."""
    seen: dict[int, torch.Tensor] = {}
    handles = []

    def hook_for(i: int) -> Callable:
        def hook(module, args, output):
            seen[i] = output[0] if isinstance(output, (tuple, list)) else output

        return hook

    try:
        for i in indices:
            handles.append(blocks[i].register_forward_hook(hook_for(i)))
        yield seen
    finally:
        for h in handles:
            h.remove()


# ------------------------------------------------------------------------------------------------ pooling
def _batch_first(x: torch.Tensor, transformer: nn.Module, batch: int) -> torch.Tensor:
    if getattr(transformer, "batch_first", True) or x.shape[0] == batch:
        return x
    return x.transpose(0, 1)


def _pool_image(visual: VisionTransformer, x: torch.Tensor, project: bool) -> torch.Tensor:
    if visual.attn_pool is not None or visual.pool_type not in ("tok", "avg"):
        raise UnsupportedLayerwiseModelError(
            f"image pooling {visual.pool_type!r} (attentional pooling: {visual.attn_pool is not None}) is not supported"
        )

    def pool(t: torch.Tensor) -> torch.Tensor:
        return t[:, 0] if visual.pool_type == "tok" else t[:, 1:].mean(dim=1)

    if not project:
        return pool(x)
    pooled = visual.ln_post(pool(x)) if visual.final_ln_after_pool else pool(visual.ln_post(x))
    return pooled @ visual.proj if visual.proj is not None else pooled


def _pool_text(model: nn.Module, kind: str, tower, x: torch.Tensor, tokens: torch.Tensor, project: bool):
    if kind == "hf":
        mask = (tokens != tower.config.pad_token_id).long()
        pooled = tower.pooler(BaseModelOutput(last_hidden_state=x), mask)
        return tower.proj(pooled) if project else pooled
    if kind == "native":
        pool_type, eos, ln, proj = model.text_pool_type, getattr(model, "text_eos_id", None), model.ln_final, None
        proj = model.text_projection
    else:
        pool_type, eos, ln, proj = (
            tower.pool_type,
            getattr(tower, "eos_id", None),
            tower.ln_final,
            tower.text_projection,
        )
    if not project:
        return text_global_pool(x, tokens, pool_type, eos_token_id=eos)
    pooled = text_global_pool(ln(x), tokens, pool_type, eos_token_id=eos)
    if proj is None:
        return pooled
    return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj


@contextlib.contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


# ------------------------------------------------------------------------------------------------ public
def extract_layer_features(
    bundle: CLIPBundle,
    dataset: Dataset,
    layers: int | Sequence[int] | None = None,
    *,
    project: bool = False,
    normalize: bool = False,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Pooled image features after each chosen block of the image tower, for every item of ``dataset``.

    Parameters
    ----------
    bundle:
        The model (``open_clip.CLIP`` or ``CustomTextCLIP`` with an open_clip ``VisionTransformer``).
    dataset:
        Map-style dataset of ``(image_tensor, label)`` pairs, already preprocessed.
    layers:
        Block indices (negative from the end); default every block.
    project:
        Apply the tower's final norm and projection to each layer (see the module docstring); then the last
        block's features equal ``model.encode_image``.
    normalize:
        L2-normalise the returned features.
    batch_size, device, num_workers, progress:
        Batching, where to run (default the model's device), ``DataLoader`` workers, a tqdm bar.

    Returns
    -------
    dict
        ``{block index: (features, labels)}``: ``float32`` (N, width or embed_dim) on CPU and ``int64`` (N,),
        in dataset order (the same labels tensor for every layer).

    Example
    -------
    >>> # feats = extract_layer_features(bundle, test_set, layers=[0, 1, -1], project=True)
    >>> # reports = {i: ncprobe.measure(f, y) for i, (f, y) in feats.items()}
    """
    model = bundle.model
    blocks = image_blocks(model)
    idx = resolve_layers(layers, len(blocks))
    dev = bundle.device if device is None else torch.device(device)
    if bundle.device != dev:
        model.to(dev)
    visual = model.visual
    chunks: dict[int, list[torch.Tensor]] = {i: [] for i in idx}
    labels: list[torch.Tensor] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    with _eval(model), torch.no_grad(), _capture(blocks, idx) as seen:
        for images, y in tqdm(loader, desc="layer features", disable=not progress, leave=False):
            images = images.to(dev)
            model.encode_image(images)
            for i in idx:
                x = _batch_first(seen[i], visual.transformer, images.shape[0])
                chunks[i].append(_pool_image(visual, x, project).float().cpu())
            labels.append(torch.as_tensor(y, dtype=torch.int64).reshape(-1))
            seen.clear()
    y_all = torch.cat(labels) if labels else torch.empty(0, dtype=torch.int64)
    out = {}
    for i in idx:
        f = torch.cat(chunks[i]) if chunks[i] else torch.empty(0, 0)
        out[i] = (normalize_rows(f) if normalize else f, y_all)
    return out


def text_layer_features(
    bundle: CLIPBundle,
    texts: Sequence[str],
    layers: int | Sequence[int] | None = None,
    *,
    project: bool = False,
    normalize: bool = False,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> dict[int, torch.Tensor]:
    """Pooled text features after each chosen block of the text tower, one row per text.

    For class text features, pass one prompt per class (e.g. ``[f"a photo of a {c}." for c in names]``);
    average several templates yourself if you need an ensemble.

    Parameters
    ----------
    bundle:
        Model and tokenizer.
    texts:
        The sentences.
    layers:
        Block indices of the text tower (negative from the end); default every block.
    project:
        Apply the tower's final norm (native) and projection to each layer; the last block then equals
        ``model.encode_text``.
    normalize:
        L2-normalise the returned features.
    batch_size, device:
        Prompts per forward pass; where to run (default the model's device).

    Returns
    -------
    dict
        ``{block index: float32 tensor (len(texts), width or embed_dim) on CPU}``.

    Example
    -------
    >>> # per_layer = text_layer_features(bundle, [f"a photo of a {c}." for c in names], project=True)
    """
    model = bundle.model
    kind, tower = _text_tower(model)
    blocks = text_blocks(model)
    idx = resolve_layers(layers, len(blocks))
    dev = bundle.device if device is None else torch.device(device)
    if bundle.device != dev:
        model.to(dev)
    texts = list(texts)
    chunks: dict[int, list[torch.Tensor]] = {i: [] for i in idx}
    transformer = tower.transformer
    with _eval(model), torch.no_grad(), _capture(blocks, idx) as seen:
        for start in range(0, len(texts), batch_size):
            tokens = bundle.tokenizer(texts[start : start + batch_size]).to(dev)
            model.encode_text(tokens)
            for i in idx:
                x = seen[i] if kind == "hf" else _batch_first(seen[i], transformer, tokens.shape[0])
                chunks[i].append(_pool_text(model, kind, tower, x, tokens, project).float().cpu())
            seen.clear()
    out = {}
    for i in idx:
        f = torch.cat(chunks[i]) if chunks[i] else torch.empty(0, 0)
        out[i] = normalize_rows(f) if normalize else f
    return out
