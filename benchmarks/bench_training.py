"""Time per epoch of prompt tuning on the embedded testbed: the plain loop against the frozen-feature bank.

The plain loop is what the original (Dassl) code does per epoch: every training batch goes through the image
tower, every evaluation re-encodes the test images, and class prompts run over the full context length. The
engine's fast path keeps the frozen image features in a bank (:mod:`ncprobe.training.feature_bank`) and trims
prompt padding (``method.trim_padding``). With ``data.augment_views=0`` all variants see identical features,
so their accuracies must agree (they are printed beside the times).

    python benchmarks/bench_training.py                      # CoOp and KgCoOp, base-to-novel, seed 1
    python benchmarks/bench_training.py --epochs 5 --shots 16 --preset testbed-coop-b2n
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def main() -> None:
    from ncprobe.training import get_preset, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["testbed-coop-b2n", "testbed-kgcoop-b2n"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--testbed", default="default", choices=["default", "fast"])
    args = parser.parse_args()
    variants = {
        "plain loop (no bank, full prompts)": {"feature_bank": "off", "method.trim_padding": False},
        "trimmed prompts, no bank": {"feature_bank": "off", "method.trim_padding": True},
        "feature bank + trimmed prompts": {"feature_bank": "on", "method.trim_padding": True},
    }
    print(hardware())
    print(
        f"{args.epochs} epochs, {args.shots} shots, testbed '{args.testbed}'; time per epoch = mean over epochs "
        "1..E of training + evaluation + NC tracking\n"
    )
    header = f"{'preset':<22} | {'variant':<36} | {'s / epoch':>9} | {'speed-up':>8} | {'base':>6} | {'novel':>6}"
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        base_time = None
        for label, changes in variants.items():
            cfg = get_preset(preset).replace(
                **{
                    "model.testbed_preset": args.testbed,
                    "optim.epochs": args.epochs,
                    "data.num_shots": args.shots,
                    "progress": False,
                    **changes,
                }
            )
            start = time.perf_counter()
            history = train(cfg).history
            total = time.perf_counter() - start
            per_epoch = float(history["seconds"].sel(epoch=slice(1, None)).mean())
            base_time = base_time or per_epoch
            acc = history["accuracy"].isel(epoch=-1)
            print(
                f"{preset:<22} | {label:<36} | {per_epoch:9.2f} | {base_time / per_epoch:7.2f}x | "
                f"{float(acc.sel(eval_set='base')):6.3f} | {float(acc.sel(eval_set='novel')):6.3f}   "
                f"(run {total:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
