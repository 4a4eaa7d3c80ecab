"""Time ``ncprobe.measure`` against a straightforward float64 numpy implementation and, when it is
installed, the public ``neural_collapse`` library (rhubarbwu/neural-collapse).

Run:  python benchmarks/bench_measure.py [--sizes 100000x512x100 ...] [--repeats 3] [--device cuda]

Every contender computes NC1 (tr(Σ_W Σ_B^†)/C), NC2 (ETF error), NC3 (self-duality) and NC4 (classifier/NCC
agreement) on the same synthetic features (float32, a common offset like CLIP's cone), and the table reports
the median wall time of ``--repeats`` runs after one warm-up, the speed-up, and NC1's relative error against
a float64 reference. A last block shows why accumulating XᵀX in float32 is not an option.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

import ncprobe


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


def public_library(x: np.ndarray, y: np.ndarray, w: np.ndarray, device: str):
    """rhubarbwu/neural-collapse, if importable (it is not on PyPI: pip install git+https://…)."""
    try:
        from neural_collapse.accumulate import CovarAccumulator, DecAccumulator, MeanAccumulator
        from neural_collapse.measure import covariance_ratio, self_duality_error, simplex_etf_error
    except ImportError:
        return None

    def run():
        c, d = w.shape
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        wt = torch.from_numpy(w).to(device)
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


def timed(fn, repeats: int, sync: bool) -> tuple[float, object]:
    out = fn()  # warm-up (numba compilation, CUDA context, caches)
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="*", default=None, help="NxDxC, e.g. 100000x512x100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip-reference", action="store_true", help="skip the slow numpy reference")
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    sizes = args.sizes or (
        ["1000000x768x1000", "200000x512x100"] if gpu else ["20000x256x50", "100000x512x100", "100000x768x1000"]
    )
    print(hardware())
    print(f"device for ncprobe: {args.device}; median of {args.repeats} runs after a warm-up\n")
    header = f"{'N x D x C':>18} | {'contender':<34} | {'time [s]':>9} | {'speed-up':>8} | {'NC1 rel. err':>12}"
    print(header)
    print("-" * len(header))
    for spec in sizes:
        n, d, c = (int(v) for v in spec.lower().split("x"))
        x, y, w = make(n, d, c)
        rows = []
        ref_time, ref_out = (None, None) if args.skip_reference else timed(lambda: numpy_reference(x, y, w), 1, False)  # noqa: B023 (called at once)
        exact = ref_out["nc1"] if ref_out else None
        if ref_time is not None:
            rows.append(("numpy float64 (per-class loops, pinv)", ref_time, ref_out["nc1"]))
        xs = torch.from_numpy(x).to(args.device)
        ys = torch.from_numpy(y).to(args.device)
        ws = torch.from_numpy(w).to(args.device)
        for precision in ("float64", "float32"):
            t, rep = timed(lambda: ncprobe.measure(xs, ys, classifier=ws, precision=precision), args.repeats, gpu)  # noqa: B023
            rows.append((f"ncprobe.measure ({precision})", t, rep["nc1"]))
            if exact is not None and precision == "float64":
                for key in ("nc2_etf_error", "nc3_self_duality", "nc4_ncc_agreement"):
                    assert abs(rep[key] - ref_out[key]) <= 1e-6 * max(1.0, abs(ref_out[key])), key
        lib = public_library(x, y, w, args.device)
        if lib is not None:
            t, out = timed(lib, args.repeats, gpu)
            rows.append(("neural_collapse (rhubarbwu)", t, out["nc1"]))
        else:
            rows.append(("neural_collapse (rhubarbwu)", None, None))
        for name, t, value in rows:
            speed = f"{ref_time / t:8.1f}" if (t and ref_time) else f"{'-':>8}"
            err = f"{abs(value - exact) / abs(exact):12.1e}" if (value is not None and exact) else f"{'-':>12}"
            ts = f"{t:9.3f}" if t is not None else f"{'n/a':>9}"
            print(f"{spec:>18} | {name:<34} | {ts} | {speed} | {err}")
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
