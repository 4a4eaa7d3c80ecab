"""Time ``ncprobe.measure`` against the hardware floor (one float32 GEMM ``X @ [M; W]ᵀ``), a straightforward
float64 numpy implementation and, when it is installed, the public ``neural_collapse`` library
(rhubarbwu/neural-collapse).

Run:  python benchmarks/bench_measure.py [--sizes 100000x512x100 ...] [--repeats 3] [--device cuda] [--tf32]

Every contender computes NC1 (tr(Σ_W Σ_B^†)/C), NC2 (ETF error), NC3 (self-duality) and NC4 (classifier/NCC
agreement) on the same synthetic features (float32, a common offset like CLIP's cone). All contenders of a
size run side by side in one process, interleaved, and each reports its best of ``--repeats`` runs after a
warm-up. Columns: time, time ÷ floor, reference time ÷ time, and NC1's relative error against the float64
reference. "streamed" is ``ClassStatistics.update`` + ``DecisionStatistics.update`` over batches of
``--batch`` rows, then ``measure`` (the first pass keeps only counts and means, one read per batch; the
second pass forms the scatter, projected when C < D, and sums the squares, see
``DecisionStatistics.statistics``). A last block shows why accumulating XᵀX in
float32 is not an option.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # time the ncprobe of this checkout
import ncprobe  # noqa: E402
from ncprobe import ClassStatistics, DecisionStatistics  # noqa: E402


def hardware() -> str:
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"CPU: {cpu}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()}); GPU: {gpu}; "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )


def make(n: int, d: int, c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)).astype(np.float32) * 0.5
    offset = rng.normal(size=d).astype(np.float32) * 2.0
    y = rng.integers(0, c, size=n)
    x = means[y] + offset + rng.standard_normal(size=(n, d), dtype=np.float32)
    w = (means - means.mean(0)).astype(np.float32) + 0.1 * rng.standard_normal(size=(c, d), dtype=np.float32)
    return x, y, w


def numpy_reference(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    """The straightforward float64 implementation: per-class loops, np.linalg.pinv, vectorised NCC."""
    x = x.astype(np.float64)
    c, d = w.shape
    n = len(x)
    means = np.zeros((c, d))
    sw = np.zeros((d, d))
    for k in range(c):
        xk = x[y == k]
        means[k] = xk.mean(0)
        r = xk - means[k]
        sw += r.T @ r
    sw /= n
    mg = means.mean(0)
    mt = means - mg
    sb = mt.T @ mt / c
    nc1 = np.trace(sw @ np.linalg.pinv(sb, hermitian=True)) / c
    g = mt @ mt.T
    ideal = (np.eye(c) - 1.0 / c) / np.sqrt(c - 1)
    etf = np.linalg.norm(g / np.linalg.norm(g) - ideal)
    wd = w.astype(np.float64)
    dual = np.sum((wd / np.linalg.norm(wd) - mt / np.linalg.norm(mt)) ** 2)
    agree = 0
    for lo in range(0, n, 8192):
        xb = x[lo : lo + 8192]
        ncc = ((means**2).sum(1)[None, :] - 2 * xb @ means.T).argmin(1)
        agree += int(((xb @ wd.T).argmax(1) == ncc).sum())
    return {"nc1": nc1, "nc2_etf_error": etf, "nc3_self_duality": dual, "nc4_ncc_agreement": agree / n}


def torch_float64_reference(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> dict:
    """A plain float64 torch version on the device (class sums, then one chunked pass for Σ_W and NCC)."""
    c, d = w.shape
    n = x.shape[0]
    rows = max(1, (1 << 26) // d)
    counts = torch.bincount(y, minlength=c).double()
    sums = torch.zeros(c, d, dtype=torch.float64, device=x.device)
    for lo in range(0, n, rows):
        sums.index_add_(0, y[lo : lo + rows], x[lo : lo + rows].double())
    means = sums / counts[:, None]
    mt = means - means.mean(0)
    sw = torch.zeros(d, d, dtype=torch.float64, device=x.device)
    sq = (means * means).sum(1)
    wd = w.double()
    agree = torch.zeros((), dtype=torch.float64, device=x.device)
    for lo in range(0, n, rows):
        xb = x[lo : lo + rows].double()
        r = xb - means[y[lo : lo + rows]]
        sw.addmm_(r.T, r)
        ncc = (sq[None, :] - 2 * xb @ means.T).argmin(1)
        agree += ((xb @ wd.T).argmax(1) == ncc).sum()
    sb = mt.T @ mt / c
    nc1 = torch.trace(sw / n @ torch.linalg.pinv(sb, hermitian=True)) / c
    return {"nc1": float(nc1), "nc4_ncc_agreement": float(agree) / n}


def public_library(x: np.ndarray, y: np.ndarray, w: np.ndarray, device: str):
    """rhubarbwu/neural-collapse, if importable (it is not on PyPI: pip install git+https://…)."""
    try:
        from neural_collapse.accumulate import CovarAccumulator, DecAccumulator, MeanAccumulator
        from neural_collapse.measure import covariance_ratio, self_duality_error, simplex_etf_error
    except ImportError:
        return None
    c, d = w.shape
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    wt = torch.from_numpy(w).to(device)

    def run():
        mean_acc = MeanAccumulator(c, d, device)
        for lo in range(0, len(x), 65536):
            mean_acc.accumulate(xt[lo : lo + 65536], yt[lo : lo + 65536])
        means, mg = mean_acc.compute()
        var_acc = CovarAccumulator(c, d, device, means)
        dec_acc = DecAccumulator(c, d, device, means, wt)
        for lo in range(0, len(x), 65536):
            var_acc.accumulate(xt[lo : lo + 65536], yt[lo : lo + 65536], means)
            dec_acc.accumulate(xt[lo : lo + 65536], yt[lo : lo + 65536], wt)
        covw, _ = var_acc.compute()
        return {
            "nc1": covariance_ratio(covw, means, mg),
            "nc2_etf_error": simplex_etf_error(means, mg),
            "nc3_self_duality": self_duality_error(wt, means, mg),
        }

    return run


def streamed(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, batch: int) -> dict:
    """Two passes over batches: ClassStatistics.update, then DecisionStatistics.update, then measure."""
    c, d = w.shape
    stats = ClassStatistics(c, track_scatter=False, track_variance=False)  # counts and means only
    for lo in range(0, x.shape[0], batch):
        stats.update(x[lo : lo + batch], y[lo : lo + batch])
    dec = DecisionStatistics(stats, classifiers={"classifier": w})
    for lo in range(0, x.shape[0], batch):
        dec.update(x[lo : lo + batch], y[lo : lo + batch])
    return ncprobe.measure(dec.statistics(), decisions=dec)


SETTLE_S = 0.3  # idle time before each timed run (see side_by_side)


def side_by_side(contenders: dict, repeats: int, sync: bool) -> tuple[dict, dict, dict]:
    """Best wall time and best process CPU time of each contender over ``repeats`` rounds; in each round
    every contender runs once. (CPU time counts all threads: on a busy machine it shows the work done,
    while wall time also shows the waiting.)

    Each timed run starts after :data:`SETTLE_S` idle seconds: after a product, OpenBLAS's worker threads
    (and torch's OpenMP threads) keep spinning on the cores for a while, and on a 2-core machine they slow
    whichever contender runs next (``measure`` measured 10-15 % slower right after numpy's GEMM than 0.3 s
    later). The floor gains the other way (its own pool still awake: 10 % faster right after a GEMM), so
    each floor is also timed right after its settled run, and its best time over both counts: the floor is
    never taken slower than it can run."""

    def once(fn):
        if sync:
            torch.cuda.synchronize()
        time.sleep(SETTLE_S)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if sync:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0, out

    outs = {name: fn() for name, fn in contenders.items()}  # warm-up (numba compilation, CUDA context)
    best = {name: float("inf") for name in contenders}
    cpu = dict(best)
    for _ in range(repeats):
        for name, fn in contenders.items():
            t, c, outs[name] = once(fn)
            if name.startswith("floor"):  # and back to back (see above)
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                if sync:
                    torch.cuda.synchronize()
                t, c = min(t, time.perf_counter() - t0), min(c, time.process_time() - c0)
            best[name], cpu[name] = min(best[name], t), min(cpu[name], c)
    return best, cpu, outs


def build_contenders(x: np.ndarray, y: np.ndarray, w: np.ndarray, args) -> dict:
    """The floor, the references and ncprobe's paths on one data set, as callables."""
    gpu = args.device.startswith("cuda")
    xs, ys, ws = (torch.from_numpy(a).to(args.device) for a in (x, y, w))
    stacked = torch.cat([ws, ws]).contiguous()  # [M; W] has the shape of the floor's right factor
    stacked_np = stacked.cpu().numpy()
    out = {"floor: torch float32 X @ [M; W]ᵀ": lambda: xs @ stacked.T}
    if not gpu:
        out["floor: numpy float32 X @ [M; W]ᵀ"] = lambda: x @ stacked_np.T
    if not args.skip_reference:
        if gpu:
            out["torch float64 plain (one pass)"] = lambda: torch_float64_reference(xs, ys, ws)
        else:
            out["numpy float64 (per-class loops, pinv)"] = lambda: numpy_reference(x, y, w)
    out["ncprobe.measure (in memory)"] = lambda: ncprobe.measure(xs, ys, classifier=ws)
    out[f"ncprobe streamed (batches of {args.batch})"] = lambda: streamed(xs, ys, ws, args.batch)
    out["ncprobe.measure (precision=float32)"] = lambda: ncprobe.measure(xs, ys, classifier=ws, precision="float32")
    lib = public_library(x, y, w, args.device)
    if lib is not None:
        out["neural_collapse (rhubarbwu)"] = lib
    return out


def not_importable(spec: str) -> str:
    """The table row of rhubarbwu/neural-collapse when it cannot be imported."""
    cells = [f"{spec:>17}", f"{'neural_collapse (rhubarbwu)':<36}", f"{'n/a':>9}", f"{'-':>7}", f"{'-':>7}"]
    return " | ".join(cells + [f"{'-':>6}", f"{'-':>12}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="*", default=None, help="NxDxC, e.g. 100000x512x100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None, help="rows per streamed batch (8192; 131072 on a GPU)")
    p.add_argument("--skip-reference", action="store_true", help="skip the slow numpy reference")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for float32 products (CUDA; certified all the same)")
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    args.batch = args.batch or (131072 if gpu else 8192)
    if args.tf32:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    cpu_sizes = ["100000x512x100", "100000x256x300", "100000x768x1000"]  # C < D, C ≥ D, C ≥ D at CLIP width
    sizes = args.sizes or (["1000000x768x1000", "1000000x768x100"] if gpu else cpu_sizes)
    print(hardware())
    print(f"device: {args.device}; tf32: {args.tf32}; best of {args.repeats} side-by-side runs after a warm-up\n")
    cols = [f"{'N x D x C':>17}", f"{'contender':<36}", f"{'time [s]':>9}", f"{'÷ floor':>7}", f"{'cpu ÷ f':>7}"]
    cols.append(f"{'ref ÷':>6}")
    header = " | ".join(cols + [f"{'NC1 rel. err':>12}"])
    print(header)
    print("-" * len(header))
    for spec in sizes:
        n, d, c = (int(v) for v in spec.lower().split("x"))
        x, y, w = make(n, d, c)
        contenders = build_contenders(x, y, w, args)
        best, cpu, outs = side_by_side(contenders, args.repeats, gpu)
        floor_name = min((n for n in best if n.startswith("floor")), key=best.get)
        floor, floor_cpu = best[floor_name], cpu[floor_name]
        ref_name = next((name for name in best if "float64 p" in name or "numpy float64" in name), None)
        ref = outs[ref_name] if ref_name else None
        exact = ref["nc1"] if ref else None
        if ref is not None:
            for name in ("ncprobe.measure (in memory)", f"ncprobe streamed (batches of {args.batch})"):
                for key in ("nc2_etf_error", "nc3_self_duality", "nc4_ncc_agreement"):
                    if key in ref:
                        assert abs(outs[name][key] - ref[key]) <= 1e-6 * max(1.0, abs(ref[key])), (name, key)
        for name, t in best.items():
            out = outs[name]
            value = out["nc1"] if isinstance(out, dict) or hasattr(out, "scalars") else None
            err = f"{abs(value - exact) / abs(exact):12.1e}" if (value is not None and exact) else f"{'-':>12}"
            speed = f"{best[ref_name] / t:6.1f}" if ref_name else f"{'-':>6}"
            ratios = f"{t / floor:7.2f} | {cpu[name] / floor_cpu:7.2f}"
            print(f"{spec:>17} | {name:<36} | {t:9.3f} | {ratios} | {speed} | {err}")
        if "neural_collapse (rhubarbwu)" not in best:
            print(not_importable(spec))
        print("-" * len(header))

    # Why not float32 XᵀX? Σ_W = (XᵀX − Σ n_k μ_k μ_kᵀ)/N cancels catastrophically when ‖μ‖² ≫ Var_W.
    n, d, c = 50000, 64, 10
    x, y, w = make(n, d, c)
    x = x + 30.0  # CLIP-like cone
    exact = numpy_reference(x, y, w)["nc1"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    counts = torch.bincount(yt, minlength=c).float()
    sums = torch.zeros(c, d).index_add_(0, yt, xt)
    means = sums / counts[:, None]
    sw = (xt.T @ xt - (means.T * counts) @ means) / n
    mt = means.double() - means.double().mean(0)
    naive = float(torch.trace(sw.double() @ torch.linalg.pinv(mt.T @ mt / c, hermitian=True)) / c)
    ours = ncprobe.nc1(xt, yt)
    ours32 = ncprobe.nc1(xt, yt, precision="float32")
    print(f"\nNC1 precision with a cone offset (N={n}, D={d}, C={c}; float64 reference {exact:.10g}):")
    print(f"  float32 XᵀX − Σ n μμᵀ       relative error {abs(naive - exact) / exact:.1e}")
    print(f"  ncprobe precision=float32   relative error {abs(ours32 - exact) / exact:.1e}")
    print(f"  ncprobe precision=float64   relative error {abs(ours - exact) / exact:.1e}")


if __name__ == "__main__":
    main()
