"""Datasets and sampling protocols of the CLIP prompt-tuning literature (CoOp, CoCoOp, MaPLe, Craft).

Entry points
------------
* :func:`load_dataset` — one of the 11 CoOp benchmark datasets or an ImageNet variant, with
  CoOp's few-shot sampling (Dassl's algorithm and random stream: the same seed draws the same images
  as CoOp when the items are listed in CoOp's order — always for datasets read from split files,
  for ImageNet only with CoOp's ``preprocessed.pkl``; see :func:`load_dataset`), base/novel split and
  optional imbalance.
* :func:`load_image_folder` — the same protocol on any class-per-folder tree.
* :class:`FewShotManifest` — the portable record of a run's selected images:
  ``ds.to_manifest().to_json(path)`` (or :func:`export_manifest`) writes it,
  ``load_dataset(name, root, manifest=path)`` or ``load_manifest(path).load_dataset(root)`` starts a
  run from it.
* :class:`ImageItemDataset` with :func:`build_train_transform` / :func:`build_test_transform`.
* :data:`CUSTOM_TEMPLATES`, :data:`IMAGENET_TEMPLATES`, :func:`format_prompts`.

Sources are named in each module: ``KaiyangZhou/Dassl.pytorch`` and ``KaiyangZhou/CoOp``.
"""

from ncprobe.data.base_novel import SUBSAMPLE_CHOICES, base_novel_labels, subsample_classes
from ncprobe.data.errors import (
    ClassNameMismatchError,
    CorruptFileError,
    DatasetLayoutError,
    FewShotFileError,
    FewShotWarning,
    ManifestMismatchError,
    SplitFileError,
    UnknownDatasetError,
)
from ncprobe.data.fewshot import (
    VAL_SHOTS_CAP,
    FewShotResult,
    check_num_shots,
    generate_fewshot_dataset,
    load_or_sample_fewshot,
    sample_fewshot,
)
from ncprobe.data.fewshot_cache import (
    fewshot_cache_path,
    load_fewshot_cache,
    read_coop_pickle,
    save_fewshot_cache,
)
from ncprobe.data.image_dataset import (
    IMAGE_EXTENSIONS,
    ImageItemDataset,
    load_image_folder,
    read_image,
    read_image_folder,
)
from ncprobe.data.imbalance import (
    GROUP_NAMES,
    ImbalanceResult,
    ImbalanceSpec,
    apply_imbalance,
    assign_groups,
    budget_matched_shots,
    imbalance_counts,
)
from ncprobe.data.items import Item, class_counts, classnames_from_splits, listdir_nohidden, split_by_label
from ncprobe.data.manifest import (
    MANIFEST_FORMAT,
    FewShotManifest,
    export_manifest,
    fewshot_manifest_path,
    load_manifest,
)
from ncprobe.data.pipeline import PreparedDataset, RawSplits, prepare_dataset
from ncprobe.data.registry import (
    BENCHMARK_11,
    DATASETS,
    DG_TARGETS,
    DatasetSpec,
    get_template,
    load_dataset,
    resolve_name,
)
from ncprobe.data.splits import read_and_split_data, read_split, save_split, split_trainval
from ncprobe.data.templates import (
    CUSTOM_TEMPLATES,
    IMAGENET_TEMPLATES,
    IMAGENET_TEMPLATES_SELECT,
    format_prompts,
)
from ncprobe.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    build_test_transform,
    build_train_transform,
    build_transform,
)

__all__ = [
    # registry / entry points
    "load_dataset",
    "load_image_folder",
    "resolve_name",
    "DATASETS",
    "BENCHMARK_11",
    "DG_TARGETS",
    "DatasetSpec",
    "PreparedDataset",
    "RawSplits",
    "prepare_dataset",
    # items and splits
    "Item",
    "listdir_nohidden",
    "split_by_label",
    "classnames_from_splits",
    "class_counts",
    "read_split",
    "save_split",
    "read_and_split_data",
    "split_trainval",
    # few-shot
    "VAL_SHOTS_CAP",
    "generate_fewshot_dataset",
    "sample_fewshot",
    "fewshot_cache_path",
    "load_fewshot_cache",
    "save_fewshot_cache",
    "load_or_sample_fewshot",
    "read_coop_pickle",
    "FewShotResult",
    "check_num_shots",
    # manifests
    "MANIFEST_FORMAT",
    "FewShotManifest",
    "export_manifest",
    "fewshot_manifest_path",
    "load_manifest",
    # base/novel
    "SUBSAMPLE_CHOICES",
    "base_novel_labels",
    "subsample_classes",
    # imbalance
    "GROUP_NAMES",
    "ImbalanceSpec",
    "ImbalanceResult",
    "imbalance_counts",
    "budget_matched_shots",
    "apply_imbalance",
    "assign_groups",
    # images and transforms
    "IMAGE_EXTENSIONS",
    "ImageItemDataset",
    "read_image",
    "read_image_folder",
    "CLIP_MEAN",
    "CLIP_STD",
    "build_train_transform",
    "build_test_transform",
    "build_transform",
    # templates
    "CUSTOM_TEMPLATES",
    "IMAGENET_TEMPLATES",
    "IMAGENET_TEMPLATES_SELECT",
    "format_prompts",
    "get_template",
    # errors
    "DatasetLayoutError",
    "SplitFileError",
    "ClassNameMismatchError",
    "UnknownDatasetError",
    "FewShotWarning",
    "CorruptFileError",
    "FewShotFileError",
    "ManifestMismatchError",
]
