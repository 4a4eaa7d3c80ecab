"""Image and text features of a :class:`CLIPBundle` or a :class:`PromptedCLIP`, with an on-disk cache.

:func:`extract_features` runs the image tower over a dataset once and caches the result as a
safetensors file under ``cache_dir("features")``. :func:`text_features` builds zero-shot classifier
weights from class names and one template or a template ensemble (CLIP / CoOp: mean of the
per-template normalised features, re-normalised).

The feature cache
-----------------
A cached file is returned only when everything that determines the features is unchanged. The key
(:func:`feature_cache_path`) holds:

* the provenance (``CLIPBundle.cache_key(weights=False)``: name, ``pretrained``, precision, ...);
* a **digest of the current weights** of everything ``encode_image`` uses
  (:func:`ncprobe.models.weights_digest`): the image tower ``model.visual`` for open_clip's
  ``CLIP``/``CustomTextCLIP`` (their ``encode_image`` is ``visual(image)``), the whole model for any
  other model class, and for a :class:`PromptedCLIP` with visual prompts (MaPLe, IVLP) also the
  prompt learner's parameters. So two random initialisations, a model fine-tuned in place and a
  checkpoint rewritten at the same path get different keys, while training only the text side
  (CoOp prompts, a text tower) keeps the image features' key. Hashing costs about 0.3 s for a
  ViT-B/16 image tower on 2 CPU cores (``benchmarks/README.md``), paid on every call, hit or miss;
  version counters or file hashes would be cheaper but miss in-place and ``.data`` updates;
* the compute mode (device type and autocast dtype: CUDA runs under bf16/fp16 autocast, whose
  features differ from float32 ones);
* the dataset's identity (:func:`dataset_identity`), split and transform names.

The file stores the full key in its metadata and is checked against it and against the dataset's
length on every read, so a file with another key, a truncated file or a foreign file is never
returned: it is recomputed (with a warning naming it) and replaced atomically.

Prompted models
---------------
``extract_features(prompted, dataset)`` accepts a :class:`PromptedCLIP` and encodes with
:meth:`PromptedCLIP.encode_image` (raw, unnormalised features, with the visual prompts of MaPLe and
IVLP). By default (``cache=None``) a prompted model is **not** cached: its prompts change at every
optimisation step, so each epoch's features would be a new file that is never read again, and the
digest would be paid for nothing. Pass ``cache=True`` to cache a finished prompted model; its key
then includes the prompt parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import open_clip
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ncprobe._io import atomic_path, cache_dir, stable_hash
from ncprobe.core.geometry import normalize_rows
from ncprobe.models.bundle import CLIPBundle
from ncprobe.models.digest import weights_digest
from ncprobe.models.prompted_clip import PromptedCLIP

__all__ = ["extract_features", "text_features", "dataset_identity", "feature_cache_path", "image_encoder_key"]

#: Bumped when the cached layout or the extraction semantics change.
#: 2: the key holds a digest of the image encoder's weights and the compute mode.
FEATURE_CACHE_VERSION = 2

Template = str | Callable[[str], str]
ImageModel = CLIPBundle | PromptedCLIP

#: ``encode_image`` implementations that only run ``model.visual`` (so the image tower's digest suffices).
_VISUAL_ONLY_ENCODERS = frozenset({open_clip.CLIP.encode_image, open_clip.CustomTextCLIP.encode_image})


def _bundle_of(source: ImageModel) -> CLIPBundle:
    if isinstance(source, PromptedCLIP):
        return source.bundle
    if isinstance(source, CLIPBundle):
        return source
    raise TypeError(f"expected a CLIPBundle (ncprobe.models.load_clip) or a PromptedCLIP, got {type(source).__name__}")


def _resolve_device(bundle: CLIPBundle, device: str | torch.device | None) -> torch.device:
    return bundle.device if device is None else torch.device(device)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    dtype = _autocast_dtype(device)
    if dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _compute_mode(device: torch.device) -> str:
    dtype = _autocast_dtype(device)
    return f"{device.type}:" + ("no-autocast" if dtype is None else f"autocast-{str(dtype).removeprefix('torch.')}")


def image_encoder_key(source: ImageModel) -> dict:
    """What determines the image features of ``source``: provenance plus digests of the weights used.

    Parameters
    ----------
    source:
        A :class:`CLIPBundle`, or a :class:`PromptedCLIP` (its visual prompts count).

    Returns
    -------
    dict
        ``{"model": provenance, "encoder": which encode_image runs, "weights_digest": digest of the image
        tower (open_clip CLIP/CustomTextCLIP) or of the whole model, "prompts": None or
        {"method", "digest"}}``. Computing it hashes the weights (see the module docstring).
    """
    bundle = _bundle_of(source)
    model = bundle.model
    visual = getattr(model, "visual", None)
    if type(model).encode_image in _VISUAL_ONLY_ENCODERS and isinstance(visual, torch.nn.Module):
        scope, digest = "visual", weights_digest(visual)
    else:
        scope, digest = "model", weights_digest(model)
    key: dict[str, Any] = {
        "model": bundle.cache_key(weights=False),
        "encoder": "PromptedCLIP.encode_image" if isinstance(source, PromptedCLIP) else "model.encode_image",
        "weights_scope": scope,
        "weights_digest": digest,
        "prompts": None,
    }
    if isinstance(source, PromptedCLIP) and source.prompt_learner.uses_vision_prompts:
        learner = source.prompt_learner
        # parameters only: the per-class token buffers depend on the class names, not on the images
        key["prompts"] = {"method": learner.method, "digest": weights_digest(learner, buffers=False)}
    return key


def _item_digest(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return f"{t.dtype}{tuple(t.shape)}:" + hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy()).hexdigest()[:16]
    return repr(value)


def dataset_identity(dataset: Dataset, *, split_name: str | None = None, transform_name: str | None = None) -> dict:
    """A JSON-serialisable identity of ``dataset`` for feature caches.

    A dataset with a ``cache_id`` attribute (a dict, or a method returning one; ``None`` means "no
    identity of its own") is identified by it, e.g. :class:`ncprobe.testbed.EmbeddedBenchmark` and
    :class:`ncprobe.data.ImageItemDataset` (its image paths, labels and transform). Any other dataset
    is identified by its class, its length and a content fingerprint: digests of the items at the
    first, middle and last index. Such a dataset with a *random* transform gets a new fingerprint on
    every call, so its features are never reused: pass ``cache=False`` for it.

    Parameters
    ----------
    dataset:
        A map-style dataset of ``(image, label)`` pairs.
    split_name, transform_name:
        Free-form names folded into the identity (e.g. ``"test"``, ``"center-crop-224"``).

    Returns
    -------
    dict
    """
    ident: dict = {"n": len(dataset), "split": split_name, "transform": transform_name}
    own = getattr(dataset, "cache_id", None)
    if callable(own):
        own = own()
    if own is not None:
        ident["dataset"] = own
        return ident
    ident["dataset"] = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
    n = len(dataset)
    probes = sorted({0, n // 2, n - 1}) if n else []
    ident["fingerprint"] = [[_item_digest(part) for part in dataset[i]] for i in probes]
    return ident


def feature_cache_path(
    bundle: ImageModel,
    dataset: Dataset,
    *,
    split_name: str | None = None,
    transform_name: str | None = None,
    device: str | torch.device | None = None,
) -> tuple[Path, dict]:
    """Where :func:`extract_features` caches the features of ``dataset`` under ``bundle``.

    Parameters
    ----------
    bundle:
        A :class:`CLIPBundle` or a :class:`PromptedCLIP`.
    dataset, split_name, transform_name:
        As for :func:`extract_features`.
    device:
        The device the features are computed on (default: the model's); it sets the compute mode.

    Returns
    -------
    (path, key)
        The safetensors path and the full key dict whose hash names it (see the module docstring).
    """
    dev = _resolve_device(_bundle_of(bundle), device)
    key = {
        "kind": "image-features",
        "version": FEATURE_CACHE_VERSION,
        "model": image_encoder_key(bundle),
        "compute": _compute_mode(dev),
        "data": dataset_identity(dataset, split_name=split_name, transform_name=transform_name),
    }
    return cache_dir("features") / f"{stable_hash(key, length=24)}.safetensors", key


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def _read_cache(path: Path, key: dict, n_items: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached ``(features, labels)`` if ``path`` holds exactly them for ``key``; else ``None``.

    A missing file or a file for another key is a plain miss. A damaged or foreign file is a miss
    with a warning that names it (it is then overwritten).
    """
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("key") != _canonical(key):
            return None
        tensors = load_file(str(path))
        feats, labels = tensors["features"], tensors["labels"]
        if feats.dim() != 2 or feats.shape[0] != n_items or labels.shape != (n_items,):
            raise ValueError(
                f"holds features {tuple(feats.shape)} and labels {tuple(labels.shape)} for a dataset of {n_items} items"
            )
        if feats.dtype != torch.float32 or labels.dtype != torch.int64:
            raise ValueError(f"holds {feats.dtype} features and {labels.dtype} labels")
        return feats, labels
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        warnings.warn(
            f"feature cache {path} is damaged or not a feature cache ({exc}); recomputing and replacing it",
            stacklevel=3,
        )
        return None


def extract_features(
    bundle: ImageModel,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    cache: bool | None = None,
    split_name: str | None = None,
    transform_name: str | None = None,
    num_workers: int = 0,
    progress: bool | None = True,
    normalize: bool = False,
    layers: int | Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Image features of every item of ``dataset`` (or, with ``layers``, of intermediate blocks).

    The model runs in eval mode under ``torch.no_grad`` (its previous mode is restored), in
    batches, with ``torch.autocast`` (bf16, else fp16) on CUDA. Features are stored unnormalised;
    ``normalize=True`` L2-normalises the returned copy (cached files stay raw).

    Parameters
    ----------
    bundle:
        A :class:`CLIPBundle` (features from ``bundle.model.encode_image``) or a :class:`PromptedCLIP`
        (features from ``encode_image(..., normalize=False)``, with its visual prompts).
    dataset:
        Map-style dataset of ``(image_tensor, label)`` pairs, already preprocessed.
    batch_size:
        Images per forward pass.
    device:
        Where to run; default the model's current device. The model is moved there if needed.
    cache:
        Read and write the on-disk cache (``cache_dir("features")``, keyed as the module docstring
        says). ``None`` (default): ``True`` for a :class:`CLIPBundle`, ``False`` for a
        :class:`PromptedCLIP` (prompts change during training; see the module docstring). ``False``
        always recomputes and writes nothing.
    split_name, transform_name:
        Names folded into the cache key; use them whenever the dataset object alone does not say
        which split or preprocessing it holds.
    num_workers:
        ``DataLoader`` workers.
    progress:
        Show a tqdm progress bar (``None``: only on a terminal).
    normalize:
        Return L2-normalised features.
    layers:
        Block indices of the image tower (negative from the end): return the pooled class-token features
        after each of them instead, as ``{block: (features, labels)}`` (:func:`ncprobe.models.layerwise.
        extract_layer_features`, ``project=True``: the last block equals the final features). Not cached.

    Returns
    -------
    (features, labels)
        ``float32`` tensor ``(N, D)`` on CPU and ``int64`` tensor ``(N,)``, in dataset order; with ``layers``
        a dict of such pairs by block index.
    """
    if layers is not None:
        from .layerwise import extract_layer_features

        if isinstance(bundle, PromptedCLIP):
            raise ValueError("layers= reads the frozen towers; pass the CLIPBundle, not a PromptedCLIP")
        return extract_layer_features(
            bundle,
            dataset,
            layers,
            project=True,
            normalize=normalize,
            batch_size=batch_size,
            device=device,
            num_workers=num_workers,
            progress=bool(progress),
        )
    base = _bundle_of(bundle)
    prompted = isinstance(bundle, PromptedCLIP)
    if cache is None:
        cache = not prompted
    dev = _resolve_device(base, device)
    path, key = (None, None)
    if cache:
        path, key = feature_cache_path(
            bundle, dataset, split_name=split_name, transform_name=transform_name, device=dev
        )
        hit = _read_cache(path, key, len(dataset))
        if hit is not None:
            feats, labels = hit
            return (normalize_rows(feats) if normalize else feats), labels

    module: torch.nn.Module = bundle if prompted else base.model
    if base.device != dev:
        module.to(dev)
    if prompted:

        def encode(x: torch.Tensor) -> torch.Tensor:
            return bundle.encode_image(x, normalize=False)

    else:
        encode = base.model.encode_image
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks: list[torch.Tensor] = []
    label_chunks: list[torch.Tensor] = []
    disable = None if progress is None else not progress
    with _eval_mode(module), torch.no_grad():
        for images, labels in tqdm(loader, desc="image features", disable=disable, leave=False):
            with _autocast(dev):
                out = encode(images.to(dev, non_blocking=True))
            chunks.append(out.float().cpu())
            label_chunks.append(torch.as_tensor(labels, dtype=torch.int64).reshape(-1))
    feats = torch.cat(chunks) if chunks else torch.empty(0, 0)
    labels = torch.cat(label_chunks) if label_chunks else torch.empty(0, dtype=torch.int64)

    if cache:
        assert path is not None and key is not None
        with atomic_path(path) as tmp:
            save_file(
                {"features": feats.contiguous(), "labels": labels.contiguous()},
                str(tmp),
                metadata={"key": _canonical(key)},
            )
    return (normalize_rows(feats) if normalize else feats), labels


def _format(template: Template, classname: str) -> str:
    return template(classname) if callable(template) else template.format(classname)


def text_features(
    bundle: CLIPBundle,
    classnames: Sequence[str],
    templates: Template | Sequence[Template],
    *,
    normalize: bool = True,
    device: str | torch.device | None = None,
    batch_size: int = 256,
    layers: int | Sequence[int] | None = None,
) -> torch.Tensor | dict[int, torch.Tensor]:
    """Text features of class prompts: zero-shot classifier weights (or, with ``layers``, of intermediate blocks).

    With one template, each class is encoded once. With several (an ensemble), each template's
    features are L2-normalised, averaged over templates and, when ``normalize``, re-normalised, as
    CLIP and CoOp build zero-shot classifiers.

    Parameters
    ----------
    bundle:
        Model and tokenizer.
    classnames:
        Class names, in label order.
    templates:
        A template string with one ``{}`` (e.g. ``"a photo of a {}."``), a callable
        ``classname → prompt``, or a list of either (an ensemble).
    normalize:
        L2-normalise the result. With a single template and ``normalize=False`` the raw
        ``encode_text`` output is returned; with an ensemble, the plain mean of normalised features.
    device:
        Where to run; default the model's device (the model is moved there if needed).
    batch_size:
        Prompts per forward pass.
    layers:
        Block indices of the text tower: return ``{block: (C, D) features}`` of the pooled end-of-text token
        (or the tower's own pooling) after each block (:func:`ncprobe.models.layerwise.text_layer_features`,
        ``project=True``), ensembles averaged as for the final features.

    Returns
    -------
    torch.Tensor
        ``float32`` tensor ``(C, D)`` on CPU; with ``layers`` a dict of them by block index.
    """
    single = isinstance(templates, str) or callable(templates)
    if layers is not None:
        from .layerwise import text_layer_features

        template_list = [templates] if single else list(templates)
        per = [
            text_layer_features(
                bundle,
                [_format(t, n) for n in classnames],
                layers,
                project=True,
                normalize=True,
                batch_size=batch_size,
                device=device,
            )
            for t in template_list
        ]
        out = {}
        for block in per[0]:
            mean = torch.stack([p[block] for p in per]).mean(0)
            out[block] = normalize_rows(mean) if normalize else mean
        return out
    template_list = [templates] if single else list(templates)
    if not template_list:
        raise ValueError("templates is empty")
    names = list(classnames)
    dev = _resolve_device(bundle, device)
    model = bundle.model
    if bundle.device != dev:
        model.to(dev)

    per_template = []
    with _eval_mode(model), torch.no_grad():
        for template in template_list:
            prompts = [_format(template, name) for name in names]
            outs = []
            for start in range(0, len(prompts), batch_size):
                tokens = bundle.tokenizer(prompts[start : start + batch_size]).to(dev)
                with _autocast(dev):
                    outs.append(model.encode_text(tokens).float().cpu())
            per_template.append(torch.cat(outs) if outs else torch.empty(0, 0))
    if single:
        feats = per_template[0]
        return normalize_rows(feats) if normalize else feats
    mean = torch.stack([normalize_rows(f) for f in per_template]).mean(dim=0)
    return normalize_rows(mean) if normalize else mean
