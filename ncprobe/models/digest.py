"""A digest of a model's weights: the part of every cache key that says *which* weights produced a result.

Why the bytes, every time
-------------------------
A model's name and ``pretrained`` tag do not identify its weights: two random initialisations share
them, a model fine-tuned in place keeps them (the "measure collapse every epoch" workflow), and a
checkpoint rewritten at the same path keeps them. :func:`weights_digest` therefore hashes the raw
bytes of every parameter and buffer, on every call. Cheaper shortcuts were rejected because each
misses a real case:

* torch's per-tensor version counters are not bumped by writes through ``.data`` (EMA updates,
  ``p.data.copy_``) or through a numpy view, so a memo keyed on them would return stale digests;
* a file hash of the checkpoint misses in-memory changes, and a sample of elements misses updates
  that touch only some entries (a few rows of an embedding table, one LayerNorm).

Hashing is made fast instead: the bytes are read in place (no copy for contiguous CPU tensors),
cut into 32 MiB pieces and hashed with SHA-256 on a thread pool (``hashlib`` releases the GIL, so
the pieces run in parallel on all cores the process may use). CUDA tensors are copied to the host
piece by piece. ``benchmarks/bench_digest.py`` measures the cost on an open_clip ViT-B/16: see
``benchmarks/README.md`` (about 0.3 s for the image tower on 2 CPU cores, less than the encoding of
one batch of images).

What the digest covers
----------------------
Names, dtypes, shapes and values of the parameters (and, by default, all buffers, persistent or
not) in ``named_parameters()`` / ``named_buffers()`` order. It does **not** depend on the device or
on the tensors' memory layout (a transposed copy with the same values gives the same digest), so a
model moved to the GPU keeps its digest.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping

import torch
from torch import nn

__all__ = ["weights_digest", "tensor_digest"]

#: Bytes per hashed piece; part of the digest's definition (changing it changes every digest).
_PIECE_BYTES = 32 << 20


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's values as a flat, contiguous ``uint8`` tensor (a view when already contiguous)."""
    t = tensor.detach()
    if t.is_meta:
        raise ValueError("a meta tensor has no data to digest (materialise the model first)")
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.is_quantized:
        t = t.int_repr()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    return t.contiguous().reshape(-1).view(torch.uint8)


def _hash_piece(piece: torch.Tensor) -> bytes:
    if piece.device.type != "cpu":
        piece = piece.cpu()
    return hashlib.sha256(piece.numpy()).digest()


def _pieces(raw: torch.Tensor) -> list[torch.Tensor]:
    n = raw.numel()
    return [raw[start : start + _PIECE_BYTES] for start in range(0, n, _PIECE_BYTES)] if n else [raw]


def _entries(source: nn.Module | Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]], buffers: bool):
    if isinstance(source, nn.Module):
        entries = list(source.named_parameters())
        if buffers:
            entries += [(f"buffer:{name}", b) for name, b in source.named_buffers()]
        return entries
    items = source.items() if isinstance(source, Mapping) else source
    entries = []
    for name, value in items:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"weights_digest: entry {name!r} is a {type(value).__name__}, not a tensor")
        entries.append((str(name), value))
    return entries


def weights_digest(
    source: nn.Module | Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]],
    *,
    buffers: bool = True,
    max_workers: int | None = None,
) -> str:
    """SHA-256 hex digest of the names, dtypes, shapes and values of a model's tensors.

    Parameters
    ----------
    source:
        A module (its ``named_parameters()``, then its ``named_buffers()``), a state dict, or
        ``(name, tensor)`` pairs. Order matters, as it does for ``load_state_dict``.
    buffers:
        Include a module's buffers (running statistics, masks, fixed token embeddings). Ignored for
        state dicts and pairs, which are hashed as given.
    max_workers:
        Hashing threads; default: the CPUs this process may use. ``1`` hashes in the calling thread.

    Returns
    -------
    str
        64 hex characters. Equal weights give equal digests on every machine and device; any change
        of a value, dtype, shape or name changes it.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    >>> weights_digest(a) == weights_digest(a), weights_digest(a) == weights_digest(b)
    (True, False)
    """
    entries = _entries(source, buffers)
    raws = []
    for name, tensor in entries:
        try:
            raws.append(_as_bytes(tensor))
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"weights_digest: cannot read tensor {name!r}: {exc}") from None
    jobs = [(i, piece) for i, raw in enumerate(raws) for piece in _pieces(raw)]
    workers = _usable_cpus() if max_workers is None else max(1, int(max_workers))
    big = sum(raw.numel() for raw in raws) >= 2 * _PIECE_BYTES
    if workers > 1 and big:
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            piece_digests = list(pool.map(lambda job: _hash_piece(job[1]), jobs))
    else:
        piece_digests = [_hash_piece(piece) for _, piece in jobs]
    per_tensor: list[list[bytes]] = [[] for _ in raws]
    for (i, _), digest in zip(jobs, piece_digests):
        per_tensor[i].append(digest)
    total = hashlib.sha256(b"ncprobe.weights_digest.v1\0")
    for (name, tensor), digests in zip(entries, per_tensor):
        header = f"{name}\0{str(tensor.dtype).removeprefix('torch.')}\0{tuple(tensor.shape)}\0{len(digests)}\0"
        total.update(header.encode())
        for digest in digests:
            total.update(digest)
    return total.hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 hex digest of one tensor's dtype, shape and values (device- and layout-independent)."""
    return weights_digest([("", tensor)], max_workers=1)
