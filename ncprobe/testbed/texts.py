"""Class text embeddings under the benchmark's protocols, and sentence encoding for the testbed.

``class_text_features(bundle, data, protocol="descriptions")`` is "the class text of protocol P":
the ``(C, D)`` matrix whose row ``c`` is the mean of class ``c``'s L2-normalised sentence
embeddings, re-normalised (CLIP's ensemble rule). Under ``"names"`` a class has one sentence, the
name in the template, so the row is that prompt's normalised embedding, as
:func:`ncprobe.models.features.text_features` gives it.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ncprobe.models.bundle import CLIPBundle
from ncprobe.testbed.benchmark import DEFAULT_PROTOCOL, EmbeddedBenchmark, benchmark_classes, class_texts

__all__ = ["encode_sentences", "class_text_features"]


def _pad_id(model: torch.nn.Module) -> int | None:
    config = getattr(getattr(model, "text", None), "config", None)
    return getattr(config, "pad_token_id", None)


def encode_sentences(
    bundle: CLIPBundle,
    sentences: Sequence[str],
    *,
    normalize: bool = True,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Text-tower embeddings of ``sentences``: ``float32 (N, D)`` on CPU, in input order.

    Sentences are encoded in batches of similar token length. With a Hugging Face text tower (whose
    attention masks padding out), trailing padding columns are cut off each batch first, which gives
    the same embeddings up to float rounding at a fraction of the cost for short sentences.

    Parameters
    ----------
    bundle:
        Model and tokenizer.
    sentences:
        The sentences.
    normalize:
        L2-normalise each embedding.
    batch_size:
        Sentences per forward pass.
    device:
        Where to run; default the model's device.
    """
    sentences = list(sentences)
    model = bundle.model
    dev = bundle.device if device is None else torch.device(device)
    if not sentences:
        return torch.empty(0, 0)
    tokens = bundle.tokenizer(sentences)
    pad = _pad_id(model)
    lengths = (tokens != pad).sum(dim=1) if pad is not None else torch.full((len(sentences),), tokens.shape[1])
    order = torch.argsort(lengths, stable=True)
    out = torch.empty(0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = tokens[idx]
                if pad is not None:
                    batch = batch[:, : max(1, int(lengths[idx].max()))]
                chunks.append(model.encode_text(batch.to(dev)).float().cpu())
            out = torch.empty(len(sentences), chunks[0].shape[1])
            out[order] = torch.cat(chunks)
    finally:
        model.train(was_training)
    return F.normalize(out, dim=-1) if normalize else out


def class_text_features(
    bundle: CLIPBundle,
    data: EmbeddedBenchmark | Sequence[Sequence[str]] | None = None,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    fallback: bool = False,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The ``(C, D)`` class text embedding of ``data`` under ``protocol`` (rows L2-normalised).

    Row ``c`` is the mean of the L2-normalised embeddings of class ``c``'s sentences
    (:meth:`EmbeddedBenchmark.class_texts`), re-normalised.

    Parameters
    ----------
    bundle:
        A testbed bundle (or any CLIP bundle).
    data:
        An :class:`EmbeddedBenchmark` (its classes, in its label order: a subset gives only its own
        classes), explicit per-class sentence lists, or ``None`` for every class of the benchmark.
    protocol:
        ``"descriptions"`` (the benchmark's primary protocol) or ``"names"``; ignored when ``data``
        is a list of sentence lists.
    fallback:
        With ``data=None``: the classes of the fallback benchmark when a source is missing.
    device:
        Where to run the text tower; default the model's device.

    Returns
    -------
    torch.Tensor
        ``float32 (C, D)`` on CPU.

    Example
    -------
    >>> T = class_text_features(bundle, EmbeddedBenchmark("test", subset="novel"))  # doctest: +SKIP
    >>> T.shape                                                                     # doctest: +SKIP
    torch.Size([10, 384])
    """
    if data is None:
        texts = class_texts(benchmark_classes(fallback=fallback), protocol)
    elif isinstance(data, EmbeddedBenchmark):
        texts = data.class_texts(protocol)
    else:
        texts = [list(t) for t in data]
    if any(not t for t in texts):
        raise ValueError("every class needs at least one sentence")
    flat = [s for t in texts for s in t]
    emb = encode_sentences(bundle, flat, device=device)
    owner = torch.repeat_interleave(torch.arange(len(texts)), torch.tensor([len(t) for t in texts]))
    sums = torch.zeros(len(texts), emb.shape[1]).index_add_(0, owner, emb)
    return F.normalize(sums / torch.bincount(owner, minlength=len(texts))[:, None], dim=-1)
