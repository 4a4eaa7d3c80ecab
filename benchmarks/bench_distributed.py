"""Streaming NC measurement over a ``torchrun`` job: each rank reads its shard, the accumulators are combined
with ``all_reduce``, and rank 0 reports. Prints the time per sample, to compare 1, 2, … processes.

    torchrun --standalone --nproc_per_node=1 benchmarks/bench_distributed.py --size 200000x512x100
    torchrun --standalone --nproc_per_node=2 benchmarks/bench_distributed.py --size 200000x512x100

On CPU the processes use gloo and split the machine's cores between them (``--threads``, default cores ÷
processes); with ``--device cuda`` each rank uses GPU ``LOCAL_RANK`` and NCCL. The pattern is the one a
multi-GPU user writes around a data loader:

    # first pass over this rank's shard: counts and means only, the second pass does the rest
    stats = ClassStatistics(C, track_scatter=False, track_variance=False)
    for x, y in loader: stats.update(x, y)
    stats.all_reduce()                                         # every rank now holds the global statistics
    dec = DecisionStatistics(stats, classifiers={"classifier": W})
    for x, y in loader: dec.update(x, y)                       # second pass: decisions (and K when C < D)
    dec.all_reduce()
    report = ncprobe.measure(dec.statistics(), decisions=dec)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # time the ncprobe of this checkout
import ncprobe  # noqa: E402
from ncprobe import ClassStatistics, DecisionStatistics  # noqa: E402


def shard(n: int, d: int, c: int, rank: int, world: int, seed: int = 0):
    """This rank's contiguous block of the synthetic data set (every rank draws the same data)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)).astype(np.float32) * 0.5
    offset = rng.normal(size=d).astype(np.float32) * 2.0
    y = rng.integers(0, c, size=n)
    w = (means - means.mean(0)) + 0.1 * rng.standard_normal(size=(c, d), dtype=np.float32)
    noise = rng.standard_normal(size=(n, d), dtype=np.float32)
    lo, hi = n * rank // world, n * (rank + 1) // world
    return means[y[lo:hi]] + offset + noise[lo:hi], y[lo:hi], w


def run(x, y, w, batch: int):
    c, d = w.shape
    stats = ClassStatistics(c, track_scatter=False, track_variance=False)  # counts and means only
    for lo in range(0, len(x), batch):
        stats.update(x[lo : lo + batch], y[lo : lo + batch])
    stats.all_reduce()
    dec = DecisionStatistics(stats, classifiers={"classifier": w})
    for lo in range(0, len(x), batch):
        dec.update(x[lo : lo + batch], y[lo : lo + batch])
    dec.all_reduce()
    return ncprobe.measure(dec.statistics(), decisions=dec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="200000x512x100", help="global NxDxC")
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="threads per process (CPU)")
    args = p.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    gpu = args.device.startswith("cuda")
    if gpu:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
        threads = args.threads or max(1, (os.cpu_count() or 1) // world)
        torch.set_num_threads(threads)
        try:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
    if world > 1:
        dist.init_process_group("nccl" if gpu else "gloo")
    n, d, c = (int(v) for v in args.size.lower().split("x"))
    x, y, w = shard(n, d, c, rank, world)
    x, y, w = (torch.from_numpy(a).to(device) for a in (x, y, w))
    report = run(x, y, w, args.batch)  # warm-up (numba compilation, CUDA context)
    times = []
    for _ in range(args.repeats):
        if world > 1:
            dist.barrier()
        if gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        report = run(x, y, w, args.batch)
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        best = min(times)
        per = f"{args.device}, {torch.get_num_threads()} threads/process" if not gpu else args.device
        print(
            f"processes {world} ({per}) | N x D x C {args.size} | best of {args.repeats}: {best:.3f} s | "
            f"{best / n * 1e6:.2f} µs per sample | nc1 {report['nc1']:.10g} | "
            f"nc4 {report['nc4_ncc_agreement']:.6f}"
        )
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
