"""Image and text features of a :class:`~ncprobe.models.bundle.CLIPBundle`, with an on-disk cache.

:func:`extract_features` runs the image tower over a dataset once and caches the result as a
safetensors file under ``cache_dir("features")``, keyed by the bundle's ``cache_key()``, the
dataset's identity, the split name and the transform name (:func:`dataset_identity`). A cache hit
reads the file and never touches the model.

:func:`text_features` builds zero-shot classifier weights from class names and one template or a
template ensemble (CLIP / CoOp: mean of the per-template normalised features, re-normalised).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ncprobe._io import atomic_path, cache_dir, stable_hash
from ncprobe.models.bundle import CLIPBundle

__all__ = ["extract_features", "text_features", "dataset_identity", "feature_cache_path"]

#: Bumped when the cached layout or the extraction semantics change.
FEATURE_CACHE_VERSION = 1

Template = str | Callable[[str], str]


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


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _tensor_digest(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return f"{t.dtype}{tuple(t.shape)}:" + hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]
    return repr(value)


def dataset_identity(dataset: Dataset, *, split_name: str | None = None, transform_name: str | None = None) -> dict:
    """A JSON-serialisable identity of ``dataset`` for feature caches.

    A dataset with a ``cache_id`` attribute (a dict, or a method returning one) is identified by it,
    e.g. :class:`ncprobe.testbed.EmbeddedBenchmark`. Any other dataset is identified by its class,
    its length and a content fingerprint: digests of the items at the first, middle and last
    index. Such a dataset with a *random* transform gets a new fingerprint on every call, so its
    features are never reused: pass ``cache=False`` for it.

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
    ident["fingerprint"] = [[_tensor_digest(part) for part in dataset[i]] for i in probes]
    return ident


def feature_cache_path(
    bundle: CLIPBundle, dataset: Dataset, *, split_name: str | None = None, transform_name: str | None = None
) -> tuple[Path, dict]:
    """Where :func:`extract_features` caches the features of ``dataset`` under ``bundle``.

    Returns
    -------
    (path, key)
        The safetensors path and the full key dict whose hash names it.
    """
    key = {
        "kind": "image-features",
        "version": FEATURE_CACHE_VERSION,
        "model": bundle.cache_key(),
        "data": dataset_identity(dataset, split_name=split_name, transform_name=transform_name),
    }
    return cache_dir("features") / f"{stable_hash(key, length=24)}.safetensors", key


def _read_cache(path: Path, key: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if json.loads(meta.get("key", "null")) != json.loads(json.dumps(key, sort_keys=True, default=str)):
            return None
        tensors = load_file(str(path))
        return tensors["features"], tensors["labels"]
    except (OSError, ValueError, KeyError, RuntimeError):  # unreadable / foreign file: recompute
        return None


def extract_features(
    bundle: CLIPBundle,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    cache: bool = True,
    split_name: str | None = None,
    transform_name: str | None = None,
    num_workers: int = 0,
    progress: bool = True,
    normalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image features of every item of ``dataset``, from ``bundle.model.encode_image``.

    The model runs in eval mode under ``torch.no_grad`` (its previous mode is restored), in
    batches, with ``torch.autocast`` (bf16, else fp16) on CUDA. Features are stored unnormalised;
    ``normalize=True`` L2-normalises the returned copy (cached files stay raw).

    Parameters
    ----------
    bundle:
        The model and its provenance (``bundle.cache_key()`` keys the cache).
    dataset:
        Map-style dataset of ``(image_tensor, label)`` pairs, already preprocessed.
    batch_size:
        Images per forward pass.
    device:
        Where to run; default the model's current device. The model is moved there if needed.
    cache:
        Read and write the on-disk cache (``cache_dir("features")``). ``False`` always recomputes
        and writes nothing.
    split_name, transform_name:
        Names folded into the cache key; use them whenever the dataset object alone does not say
        which split or preprocessing it holds.
    num_workers:
        ``DataLoader`` workers.
    progress:
        Show a tqdm progress bar.
    normalize:
        Return L2-normalised features.

    Returns
    -------
    (features, labels)
        ``float32`` tensor ``(N, D)`` on CPU and ``int64`` tensor ``(N,)``, in dataset order.
    """
    path, key = (None, None)
    if cache:
        path, key = feature_cache_path(bundle, dataset, split_name=split_name, transform_name=transform_name)
        hit = _read_cache(path, key)
        if hit is not None:
            feats, labels = hit
            return (F.normalize(feats, dim=-1) if normalize else feats), labels

    dev = _resolve_device(bundle, device)
    model = bundle.model
    if bundle.device != dev:
        model.to(dev)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks: list[torch.Tensor] = []
    label_chunks: list[torch.Tensor] = []
    with _eval_mode(model), torch.no_grad():
        for images, labels in tqdm(loader, desc="image features", disable=not progress, leave=False):
            with _autocast(dev):
                out = model.encode_image(images.to(dev, non_blocking=True))
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
                metadata={"key": json.dumps(key, sort_keys=True, default=str)},
            )
    return (F.normalize(feats, dim=-1) if normalize else feats), labels


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
) -> torch.Tensor:
    """Text features of class prompts: zero-shot classifier weights.

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

    Returns
    -------
    torch.Tensor
        ``float32`` tensor ``(C, D)`` on CPU.
    """
    single = isinstance(templates, str) or callable(templates)
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
        return F.normalize(feats, dim=-1) if normalize else feats
    mean = torch.stack([F.normalize(f, dim=-1) for f in per_template]).mean(dim=0)
    return F.normalize(mean, dim=-1) if normalize else mean
