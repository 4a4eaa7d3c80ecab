"""Cost of the weights digest that keys feature caches, on an open_clip ViT-B/16 (random init, CPU).

``extract_features`` hashes the image tower's weights on every call (hit or miss) so that stale
features can never come back; this script measures what that costs, next to what it protects (the
encoding of one batch of images).

    python benchmarks/bench_digest.py                  # ViT-B-16, 3 repeats
    python benchmarks/bench_digest.py --model ViT-L-14 --repeats 5
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import time

import open_clip
import torch
from _machine import cpu_name, usable_cpus  # benchmarks/_machine.py (scripts run from this folder)

from ncprobe.models import CLIPBundle, weights_digest
from ncprobe.models.features import image_encoder_key


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _mib(module: torch.nn.Module) -> float:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="images in the reference forward pass")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = open_clip.create_model(args.model, pretrained=None).eval()
    bundle = CLIPBundle(model, open_clip.get_tokenizer(args.model), None, args.model)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.randn(args.batch, 3, size, size)
    cpus = usable_cpus()

    flat = torch.cat([p.detach().reshape(-1) for p in model.visual.parameters()]).numpy()

    def raw_sha256() -> None:
        hashlib.sha256(flat).hexdigest()

    def forward() -> None:
        with torch.no_grad():
            model.encode_image(images)

    rows = [
        ("hashlib.sha256 of the same bytes, one buffer (lower bound)", _mib(model.visual), raw_sha256),
        (
            "weights_digest(model.visual), 1 thread",
            _mib(model.visual),
            lambda: weights_digest(model.visual, max_workers=1),
        ),
        (f"weights_digest(model.visual), {cpus} threads", _mib(model.visual), lambda: weights_digest(model.visual)),
        (f"weights_digest(model), {cpus} threads", _mib(model), lambda: weights_digest(model)),
        (
            "image_encoder_key(bundle) (per extract_features call)",
            _mib(model.visual),
            lambda: image_encoder_key(bundle),
        ),
        (f"encode_image, one batch of {args.batch} images", float("nan"), forward),
    ]
    print(f"{args.model} (open_clip {open_clip.__version__}, random init, float32)")
    print(
        f"CPU: {cpu_name()}, {cpus} usable cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); Python {platform.python_version()}"
    )
    print(f"median of {args.repeats} runs after a warm-up\n")
    header = f"{'what':<60} | {'MiB':>7} | {'time [s]':>8} | {'GB/s':>6}"
    print(header)
    print("-" * len(header))
    for name, mib, fn in rows:
        seconds = _median_seconds(fn, args.repeats)
        rate = "" if mib != mib else f"{mib * 2**20 / seconds / 1e9:6.2f}"
        size_txt = "" if mib != mib else f"{mib:7.0f}"
        print(f"{name:<60} | {size_txt:>7} | {seconds:8.3f} | {rate:>6}")


if __name__ == "__main__":
    main()
