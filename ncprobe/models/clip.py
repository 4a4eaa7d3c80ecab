"""Load an ``open_clip`` model (pretrained tag, local checkpoint or random init) into a :class:`CLIPBundle`.

Weights and activations
-----------------------
OpenAI CLIP was trained with QuickGELU. ``open_clip`` 3.x builds the plain configs (``ViT-B-16``)
with ``nn.GELU`` and only *warns* when they are combined with the ``openai`` tag, so
``load_clip("ViT-B-16", "openai")`` silently runs a slightly different network. The numbers of
CoOp, CoCoOp, MaPLe, PromptSRC and Craft were obtained with the original OpenAI activation: use the
``-quickgelu`` configs (``load_clip("ViT-B-16-quickgelu", "openai")``) or ``force_quick_gelu=True``.
:func:`load_clip` warns when ``openai`` weights meet a non-QuickGELU config.

Precision
---------
``precision`` is passed to ``open_clip.create_model_and_transforms``:

* ``"fp32"`` (default): float32 weights.
* ``"fp16"`` / ``"bf16"``: OpenAI-style mixed weights (linear/conv/attention weights in half precision,
  LayerNorm computed in float32). Not usable with Hugging Face text towers (``open_clip`` leaves their
  embeddings in float32 and ``encode_text`` fails); :func:`load_clip` rejects that combination.
  The Dassl code bases (CoOp, CoCoOp, MaPLe, Craft) run CLIP in fp16 by default (``PREC: fp16``),
  with fp16 prompt parameters: paper numbers were obtained that way.
* ``"pure_fp16"`` / ``"pure_bf16"``: every tensor in half precision.
* ``"amp"``, ``"amp_bf16"``, ``"amp_fp16"``: float32 weights; run the forward pass under
  :func:`autocast` (``amp`` = float16 autocast on CUDA, Dassl's ``PREC: amp``).

Offline use
-----------
Pretrained tags are downloaded by ``open_clip`` (Hugging Face Hub or a URL). Without network access
the download fails and :func:`load_clip` raises :class:`PretrainedWeightsUnavailableError` explaining
how to pass a local file. Set ``HF_HUB_OFFLINE=1`` to make that failure immediate (otherwise the Hub
client retries for up to about a minute before giving up).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import open_clip
import torch
from open_clip.hf_model import HFTextEncoder

from .._io import atomic_write_json, cache_dir
from .bundle import CLIPBundle

__all__ = [
    "PRECISIONS",
    "PretrainedWeightsUnavailableError",
    "autocast",
    "hf_offline",
    "load_clip",
    "network_reachable",
    "pretrained_download",
    "register_model_config",
]

log = logging.getLogger(__name__)

#: Precision names accepted by :func:`load_clip` (the ones ``open_clip`` understands).
PRECISIONS = ("fp32", "fp16", "bf16", "pure_fp16", "pure_bf16", "amp", "amp_bf16", "amp_fp16")

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz", ".tar")
_URL_TIMEOUT_S = 30.0


class PretrainedWeightsUnavailableError(RuntimeError):
    """The requested pretrained weights could not be fetched (typically: no network access)."""


def register_model_config(name: str, config: dict[str, Any], *, folder: str | os.PathLike | None = None) -> Path:
    """Make a custom model configuration available to ``open_clip`` under ``name``.

    The configuration is written as ``<folder>/<name>.json`` and registered with
    ``open_clip.add_model_config``, after which ``open_clip.create_model(name)`` and
    ``open_clip.get_tokenizer(name)`` work as for a built-in configuration.

    Parameters
    ----------
    name:
        Configuration name (the file stem); an existing registration of the same name is replaced.
    config:
        An ``open_clip`` model configuration with ``embed_dim``, ``vision_cfg`` and ``text_cfg``
        (optionally ``quick_gelu``, ``custom_text``, ``init_logit_bias``, ...). ``os.PathLike`` values
        (e.g. a local ``hf_model_name``) are stored as strings.
    folder:
        Where to write the JSON file; defaults to ``cache_dir("open_clip_configs")``.

    Returns
    -------
    Path
        The JSON file written.
    """
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ValueError(f"model config {name!r} lacks the keys {missing} that open_clip requires")
    root = Path(folder) if folder is not None else cache_dir("open_clip_configs")
    path = root / f"{name}.json"
    atomic_write_json(path, config, indent=2, sort_keys=True, default=os.fspath)  # paths → str
    open_clip.add_model_config(path)  # public API; re-reads every registered config file
    return path


@contextlib.contextmanager
def autocast(precision: str, device: str | torch.device = "cpu") -> Iterator[None]:
    """Autocast context matching a :func:`load_clip` precision (a no-op for non-``amp`` precisions).

    ``"amp"``/``"amp_fp16"`` autocast to float16, ``"amp_bf16"`` to bfloat16, on ``device``'s type.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if not precision.startswith("amp"):
        yield
        return
    dtype = torch.bfloat16 if precision == "amp_bf16" else torch.float16
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound URL downloads (``urllib`` has no timeout by default) while open_clip fetches weights."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def hf_offline() -> bool:
    """Whether the Hugging Face Hub client is set offline (``HF_HUB_OFFLINE``): no download is tried."""
    return _hf_offline()


def _hf_offline() -> bool:
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover - huggingface_hub is an open_clip dependency
        pass
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _how_to_pass_local(name: str, tag: str, cfg: dict) -> str:
    sources = []
    if cfg.get("hf_hub"):
        sources.append(f"Hugging Face Hub 'hf-hub:{cfg['hf_hub']}'")
    if cfg.get("url"):
        sources.append(f"URL {cfg['url']}")
    where = " or ".join(sources) or "its original source"
    return (
        f"Could not fetch the pretrained weights {tag!r} for {name!r} (no network access?). "
        f"On a machine with internet, download them ({where}; e.g. "
        f"`open_clip.create_model({name!r}, pretrained={tag!r})` fills the cache), copy the checkpoint "
        f"file here and pass its path: `load_clip({name!r}, pretrained='/path/to/checkpoint.bin')` "
        f"(.pt/.bin/.safetensors). Alternatively pass `cache_dir=` pointing at a copied Hugging Face cache "
        f"and set HF_HUB_OFFLINE=1."
    )


def _tag_is_cached(cfg: dict, cache_dir: str | None) -> bool:
    """Whether a pretrained tag's file is already on disk (so it can load without network)."""
    if cfg.get("file"):
        return os.path.isfile(cfg["file"])
    if cfg.get("hf_hub"):
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover
            return False
        repo, filename = os.path.split(cfg["hf_hub"])
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for fname in candidates:
            hit = try_to_load_from_cache(repo, fname, cache_dir=cache_dir)
            if isinstance(hit, str) and os.path.isfile(hit):
                return True
        return False
    if cfg.get("url"):
        root = cache_dir or os.path.expanduser("~/.cache/clip")
        return os.path.isfile(os.path.join(root, os.path.basename(cfg["url"])))
    return False


def network_reachable(url: str, *, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the host of ``url`` opens within ``timeout`` seconds.

    Nothing is sent: it tells at once whether a download could start, where the Hub client would spend
    about a minute retrying before it fails. The name lookup runs in a daemon thread, so a DNS server that
    does not answer costs ``timeout`` too.
    """
    parsed = urlparse(url if "://" in url else f"https://{url}")
    if not parsed.hostname:
        return False
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    found: list = []

    def resolve() -> None:  # getaddrinfo ignores socket timeouts: a dead DNS server can block for long
        try:
            found.extend(socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM))
        except OSError:
            pass

    start = time.monotonic()
    lookup = threading.Thread(target=resolve, daemon=True)
    lookup.start()
    lookup.join(timeout)
    for family, kind, proto, _, address in list(found):
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return True
        except OSError:
            continue
    return False


def pretrained_download(
    name: str, pretrained: str | os.PathLike | None, *, cache_dir: str | os.PathLike | None = None
) -> tuple[str, str] | None:
    """What :func:`load_clip` would download for ``(name, pretrained)``, checked without loading anything.

    Returns ``None`` when nothing is needed from the network (random init, an existing local file, a tag
    already in the local cache), else ``(source, url)``: a description of where the weights come from (for
    messages) and the address a download would open. Raises ``ValueError`` for an unknown model or tag and
    ``FileNotFoundError`` for a checkpoint path that does not exist, as :func:`load_clip` does.
    """
    schema, identifier = open_clip.factory.parse_model_name(name)
    cache = None if cache_dir is None else str(cache_dir)
    hub = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if schema == "hf-hub":
        cfg = {"hf_hub": f"{identifier}/open_clip_config.json"}
        return None if _tag_is_cached(cfg, cache) else (f"Hugging Face Hub 'hf-hub:{identifier}'", hub)
    if schema is not None:  # local-dir: read from disk
        return None
    name = name.replace("/", "-")
    if open_clip.get_model_config(name) is None:
        raise ValueError(f"unknown open_clip model {name!r}; see open_clip.list_models()")
    if pretrained is None or os.path.isfile(os.fspath(pretrained)):
        return None
    tag = os.fspath(pretrained)
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        if os.sep in tag or tag.endswith(_CHECKPOINT_SUFFIXES):
            raise FileNotFoundError(f"checkpoint file not found: {tag}")
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ValueError(f"{tag!r} is neither a pretrained tag of {name!r} nor an existing file; known tags: {tags}")
    if _tag_is_cached(cfg, cache):
        return None
    if cfg.get("hf_hub"):
        return f"Hugging Face Hub 'hf-hub:{cfg['hf_hub']}'", hub
    if cfg.get("url"):
        return f"URL {cfg['url']}", cfg["url"]
    return "its original source", hub


def _quick_gelu_of(name: str, force_quick_gelu: bool | None) -> bool:
    cfg = open_clip.get_model_config(name) or {}
    return bool(force_quick_gelu) or bool(cfg.get("quick_gelu", False))


def load_clip(
    name: str,
    pretrained: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    force_quick_gelu: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    model_cfg: dict[str, Any] | None = None,
    weights_only: bool = True,
) -> CLIPBundle:
    """Create an ``open_clip`` model with its tokenizer and evaluation transform.

    Parameters
    ----------
    name:
        An ``open_clip`` model configuration name (``"ViT-B-16-quickgelu"``; ``"ViT-B/16"`` is accepted
        and normalised), an ``"hf-hub:org/repo"`` or ``"local-dir:/path"`` identifier, or the name of a
        configuration given in ``model_cfg``.
    pretrained:
        ``None`` for random initialisation (Hugging Face text towers still load their own pretrained
        weights, as ``open_clip`` does by default); an ``open_clip`` pretrained tag (``"openai"``,
        ``"laion2b_s34b_b88k"``, ...); or the path of a local checkpoint (``.pt``, ``.bin``,
        ``.safetensors``, or an OpenAI JIT archive with ``weights_only=False``). Ignored by
        ``open_clip`` for ``hf-hub:``/``local-dir:`` names.
    device:
        Device to place the model on.
    precision:
        One of :data:`PRECISIONS` (see the module docstring). Dassl code bases ran CLIP in ``"fp16"``.
    force_quick_gelu:
        ``True`` forces QuickGELU (as OpenAI CLIP); ``None``/``False`` keep the configuration's setting.
    cache_dir:
        Download cache for ``open_clip`` (default: its own cache).
    model_cfg:
        A custom ``open_clip`` configuration to register under ``name`` first (see
        :func:`register_model_config`), e.g. tiny models for tests or a Hugging Face text tower.
    weights_only:
        Passed to ``torch.load`` for local checkpoints; set ``False`` only for trusted files that need it
        (OpenAI JIT archives).

    Returns
    -------
    CLIPBundle
        The model in eval mode, ``open_clip.get_tokenizer(name)``, the evaluation transform, and
        ``extra={"precision": ..., "quick_gelu": ...}`` (part of feature-cache keys).

    Raises
    ------
    PretrainedWeightsUnavailableError
        A pretrained tag could not be downloaded (offline); the message says how to pass a local file.
    FileNotFoundError
        ``pretrained`` looks like a file path that does not exist.
    ValueError
        Unknown model name, pretrained tag or precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if model_cfg is not None:
        register_model_config(name, model_cfg)
    schema, _ = open_clip.factory.parse_model_name(name)
    if schema is None:
        name = name.replace("/", "-")
        if open_clip.get_model_config(name) is None:
            raise ValueError(
                f"unknown open_clip model {name!r}; see open_clip.list_models() or pass model_cfg= "
                f"to register a custom configuration"
            )
    cache_dir = None if cache_dir is None else str(cache_dir)
    pretrained = None if pretrained is None else os.fspath(pretrained)

    tag_cfg: dict = {}
    if pretrained is not None and schema is None and not os.path.isfile(pretrained):
        tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
        if not tag_cfg:
            if os.sep in pretrained or pretrained.endswith(_CHECKPOINT_SUFFIXES):
                raise FileNotFoundError(f"checkpoint file not found: {pretrained}")
            tags = open_clip.list_pretrained_tags_by_model(name)
            raise ValueError(
                f"{pretrained!r} is neither a pretrained tag of {name!r} nor an existing file; "
                f"known tags: {tags or 'none'}"
            )
        quick = _quick_gelu_of(name, force_quick_gelu)
        if tag_cfg.get("quick_gelu", False) and not quick:
            warnings.warn(
                f"pretrained={pretrained!r} weights were trained with QuickGELU but config {name!r} "
                f"uses GELU; use '{name}-quickgelu' (or force_quick_gelu=True) to reproduce OpenAI CLIP "
                f"and the CoOp/MaPLe/Craft numbers",
                UserWarning,
                stacklevel=2,
            )
        if _hf_offline() and not _tag_is_cached(tag_cfg, cache_dir):
            raise PretrainedWeightsUnavailableError(
                "HF_HUB_OFFLINE is set and the weights are not cached. " + _how_to_pass_local(name, pretrained, tag_cfg)
            )

    try:
        with _socket_timeout(_URL_TIMEOUT_S):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=pretrained,
                precision=precision,
                device=device,
                force_quick_gelu=bool(force_quick_gelu),
                cache_dir=cache_dir,
                weights_only=weights_only,
            )
    except Exception as err:  # open_clip wraps hub/URL failures in RuntimeError; keep the cause
        if tag_cfg:
            raise PretrainedWeightsUnavailableError(_how_to_pass_local(name, pretrained, tag_cfg)) from err
        if schema == "hf-hub":
            raise PretrainedWeightsUnavailableError(
                f"Could not load {name!r} from the Hugging Face Hub (no network access?). Download the "
                "repository (open_clip_config.json + weights) elsewhere, copy it here and use "
                "load_clip('local-dir:/path/to/folder')."
            ) from err
        raise
    if precision in ("fp16", "bf16") and isinstance(getattr(model, "text", None), HFTextEncoder):
        raise ValueError(
            f"precision={precision!r} does not work with Hugging Face text towers: open_clip converts their "
            "linear layers but not their embeddings, and encode_text fails on mixed dtypes; use "
            f"'pure_{precision}' or 'amp{'_bf16' if precision == 'bf16' else ''}' instead"
        )
    model.eval()
    tokenizer = open_clip.get_tokenizer(name, cache_dir=cache_dir)
    quick = _quick_gelu_of(name, force_quick_gelu) if schema is None else bool(force_quick_gelu)
    return CLIPBundle(
        model=model,
        tokenizer=tokenizer,
        preprocess=preprocess,
        name=name,
        pretrained=pretrained,
        extra={"precision": precision, "quick_gelu": quick},
    )
