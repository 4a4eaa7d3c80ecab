"""``ncprobe quickstart``: the main job on embedded data, nothing downloaded.

Builds (first run: about two minutes on 2 CPU cores, cached afterwards) or loads the embedded vision-language
testbed, prints its zero-shot accuracies, extracts the image features of one task's test split and its class text
embeddings, and measures neural collapse of both, base vs. novel classes.

The default build, ``v3`` (``ncprobe-embedded-v3``, "pretrain wide, tune shifted"), is a small ViT image tower
pretrained against a frozen MiniLM text tower on every class of three tasks in a neutral style; the tasks are
then evaluated on shifted versions (thick noisy strokes, random colours, clutter). Its zero-shot numbers are
printed per task from the build's metadata, with the class text ``"a photo of a {name}."``; ``--task`` picks the
task whose test split is measured. The v2 builds (``--preset default``/``v2``, ``fast``, ``transfer``) print both
of v2's class-text protocols and measure v2's test split under its primary one (each class's descriptions).
"""

from __future__ import annotations

import argparse

from ._common import CLIError, add_format_argument, check_device, check_output_path, print_report

__all__ = ["add_parser", "run", "V3_PRESETS", "V3_TASK_NAMES"]

#: Builds of the v3 benchmark (the rest are v2's).
V3_PRESETS = ("v3", "v3-fast")
#: v3's tasks, spelled out so that ``ncprobe --help`` imports no torch (a test keeps it equal to ``V3_TASKS``).
V3_TASK_NAMES = ("testbed-strokes", "testbed-colour", "testbed-shapes")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart", help="build/load the embedded V-L testbed, extract features, measure them", description=__doc__
    )
    p.add_argument(
        "--preset",
        choices=["v3", "v3-fast", "default", "v2", "fast", "transfer"],
        default="v3",
        help="testbed build (default: %(default)s, about two minutes the first time; 'v3-fast' is v3's test build; "
        "'default' (alias 'v2'), 'fast' and 'transfer' are the v2 benchmark's builds)",
    )
    p.add_argument(
        "--task",
        choices=V3_TASK_NAMES,
        default=None,
        help="v3 only: the task whose test split is measured (default: testbed-strokes)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_format_argument(p)
    p.add_argument("-o", "--output", help="write the report as netCDF (checked before any work)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    v3 = args.preset in V3_PRESETS
    if args.task is not None and not v3:
        raise CLIError(f"--task chooses a v3 task; preset {args.preset!r} is a v2 build (use --preset v3)")
    out = check_output_path(args.output)
    device = check_device(args.device)
    from ncprobe.testbed import load_testbed, testbed_metadata

    progress = None if not args.quiet else False
    if v3 and not args.quiet and args.format == "text":
        print(
            f"ncprobe quickstart: loading the embedded testbed '{args.preset}' (the first run builds it, "
            f"{'about two minutes on 2 CPU cores' if args.preset == 'v3' else 'seconds'}; it is cached afterwards)",
            flush=True,
        )
    bundle = load_testbed(args.preset, seed=args.seed, device=device, progress=progress)
    meta = testbed_metadata(bundle)
    if v3:
        report, header, footer = _measure_v3(bundle, meta, args, progress)
    else:
        report, header, footer = _measure_v2(bundle, meta, args, progress)
    print_report(report, args.format, per_group=True, header=header)
    if args.format == "text":
        print(footer)
    if out is not None:
        report.to_netcdf(out)
        if args.format == "text":
            print(f"report written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- v3
def _hm(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def _v3_zero_shot_lines(meta: dict) -> list[str]:
    """One line per task: base, novel and HM on the test split, then on val (from the build's metadata)."""
    zs, tasks = meta["zero_shot"], meta.get("tasks", {})
    order = [*(t for t in V3_TASK_NAMES if t in zs), *(t for t in zs if t not in V3_TASK_NAMES)]
    width = max(len(t) for t in order)
    lines = [
        'zero-shot accuracy, class text "a photo of a {name}.", CoOp base-to-novel protocol (each half classified '
        "among its own classes; HM = harmonic mean of base and novel):"
    ]
    for task in order:
        cells = []
        for split in ("test", "val"):
            s = zs[task][split]
            cells.append(f"{split}: base {s['base']:.3f}, novel {s['novel']:.3f}, HM {_hm(s['base'], s['novel']):.3f}")
        shift = tasks.get(task, {}).get("summary")
        lines.append(f"  {task:<{width}}  {cells[0]}  |  {cells[1]}" + (f"  ({shift})" if shift else ""))
    return lines


def _measure_v3(bundle, meta: dict, args: argparse.Namespace, progress):
    import torch
    from torch.utils.data import TensorDataset

    from ncprobe.core.measure import measure
    from ncprobe.models.features import extract_features
    from ncprobe.testbed import class_text_features, to_model_input
    from ncprobe.testbed.benchmark_v3 import base_novel, load_task

    task = args.task or V3_TASK_NAMES[0]
    data = load_task(task, "test")
    images = TensorDataset(to_model_input(data.images), data.labels)
    feats, labels = extract_features(bundle, images, cache=False, progress=progress)
    names = list(data.classnames)
    text = class_text_features(bundle, [[data.template.format(n)] for n in names])
    base, novel = base_novel(task)
    groups = ["base" if k in set(base) else "novel" for k in range(len(names))]
    report = measure(
        feats, labels.to(torch.int64), text_features=text, groups=groups, class_names=names, normalize_images=True
    )
    train = meta.get("training", {})
    header = "\n".join(
        [
            f"ncprobe quickstart: embedded testbed '{args.preset}' ({meta['benchmark']}): a small ViT image tower "
            f"pretrained against a frozen MiniLM text tower on all {train.get('num_classes', '?')} classes of three "
            "tasks in a neutral style, evaluated on shifted versions of those tasks (images it never saw)",
            *_v3_zero_shot_lines(meta),
            f"neural collapse below: task {task} ({data.template.format('{name}')!r} class text), test split, "
            f"{len(data)} images, {len(names)} classes ({len(base)} base, {len(novel)} novel); "
            f"t2i_zero_shot_accuracy is {len(names)}-way, on L2-normalised image features",
            "",
        ]
    )
    footer = (
        "(per group: base classes are the ones prompt tuning trains on, novel ones are held out from it; the tower "
        "was pretrained on both, in the neutral style)"
    )
    return report, header, footer


# ---------------------------------------------------------------------------------------------------- v2
def _measure_v2(bundle, meta: dict, args: argparse.Namespace, progress):
    from ncprobe.core.measure import measure
    from ncprobe.data import base_novel_labels
    from ncprobe.models.features import extract_features
    from ncprobe.testbed import EmbeddedBenchmark, class_text_features

    data = EmbeddedBenchmark("test")
    feats, labels = extract_features(bundle, data, split_name="test", progress=progress)
    text = class_text_features(bundle, data, protocol=data.protocol)
    base, _ = base_novel_labels(range(len(data.classnames)))
    groups = ["base" if k in set(base) else "novel" for k in range(len(data.classnames))]
    report = measure(
        feats, labels, text_features=text, groups=groups, class_names=data.classnames, normalize_images=True
    )
    zs = meta["zero_shot"]
    header = "\n".join(
        [
            f"ncprobe quickstart: embedded testbed '{args.preset}' (frozen MiniLM text tower + small ViT trained on "
            f"the base classes), benchmark {meta['benchmark']}, {len(data)} test images, "
            f"{len(data.classnames)} classes ({len(base)} base, {len(data.classnames) - len(base)} novel)",
            "zero-shot accuracy, CoOp base-to-novel protocol "
            f"(each half classified among its own {len(base)} classes):",
            *(_zero_shot_line(zs["protocols"][p], p, p == zs["protocol"]) for p in _protocol_order(zs)),
            f"the report below uses the {zs['protocol']} class text and classifies among all classes "
            f"(t2i_zero_shot_accuracy is {len(data.classnames)}-way), on L2-normalised image features",
            "",
        ]
    )
    footer = "(per group: base classes were seen in training, novel ones only through their text)"
    return report, header, footer


def _protocol_order(zs: dict) -> list[str]:
    """The primary protocol first, then the others (v1's ``"names"``) in stored order."""
    return [zs["protocol"], *(p for p in zs["protocols"] if p != zs["protocol"])]


def _zero_shot_line(scores: dict, protocol: str, primary: bool) -> str:
    what = {"descriptions": "class text = mean of its descriptions", "names": 'class text = "a photo of a {name}."'}
    label = f"{protocol} protocol{' (primary)' if primary else ''} [{what.get(protocol, protocol)}]"
    domains = ", ".join(f"{k.removeprefix('novel_')} {v:.3f}" for k, v in scores.items() if k.startswith("novel_"))
    extra = f" (novel {domains})" if domains else ""
    return f"  {label}: base {scores['base']:.3f}, novel {scores['novel']:.3f}, HM {scores['hm']:.3f}{extra}"
