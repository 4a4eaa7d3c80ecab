"""Scale-out with ``torchrun``: the same command runs on one process or many.

``torchrun --nproc_per_node N -m ncprobe train ...`` (or ``python -m torch.distributed.run``) sets the usual
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); the engine then

* initialises the process group (NCCL on GPUs, gloo on CPUs) and puts rank r on ``cuda:LOCAL_RANK``;
* splits every global batch into N contiguous parts, one per rank, and averages the prompt gradients across
  ranks (what DDP does; the learners are small, so an explicit all-reduce of their gradients is the whole
  mechanism). With a global batch divisible by N this equals the one-process step up to float rounding;
  batch-structured terms (e.g. an in-batch contrastive loss) see only their rank's part;
* shards every evaluation set: each rank encodes its part and accumulates ``ClassStatistics`` /
  ``DecisionStatistics``, which ``all_reduce`` into the statistics of the whole set before the report;
* lets rank 0 alone write files and draw progress bars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "average_gradients", "shard", "all_gather_rows", "all_sum"]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and whether a process group is active."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bar_disable(self, progress: bool | None) -> bool | None:
        """tqdm's ``disable`` for the run option ``progress`` on this rank: only rank 0 draws; ``None`` (bars
        only on a terminal) is tqdm's own ``disable=None``, which checks that the output is a TTY."""
        if not self.is_main or progress is False:
            return True
        return None if progress is None else False


def init_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join the process group that ``torchrun`` describes (a no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return DistInfo(), dev
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device is None or str(device).startswith("cuda")) and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    return DistInfo(rank, world, local), dev


def average_gradients(params, info: DistInfo) -> None:
    """Average the gradients of ``params`` over the ranks (in place)."""
    if not info.active:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def shard(indices: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous part of ``indices`` (all of them for one process)."""
    if not info.active:
        return indices
    return torch.tensor_split(indices, info.world_size)[info.rank]


def all_gather_rows(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate every rank's rows, in rank order (rows may differ in number across ranks)."""
    if not info.active:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(info.world_size)]
    dist.all_gather(sizes, n)
    width = int(max(s.item() for s in sizes))
    padded = torch.zeros((width, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def all_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over the ranks (a copy; the input is unchanged)."""
    if not info.active:
        return x
    out = x.clone()
    dist.all_reduce(out)
    return out
