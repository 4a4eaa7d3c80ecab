"""Named presets: the embedded-testbed runs (minutes on 2 CPU cores) and the paper settings.

Testbed presets (``testbed-<method>-<protocol>``) train on the embedded benchmark with short schedules chosen so
that every method and protocol runs end to end on two CPU cores in a few minutes; they are for seeing the
machinery and the qualitative effects, not for paper numbers.

Paper presets (``paper-<method>-<protocol>``) carry the published hyper-parameters (:mod:`.protocols`) for
ViT-B/16 with OpenAI weights; they need the weights and the data the user supplies::

    ncprobe train --preset paper-coop-base_to_novel --model.pretrained /path/ViT-B-16.pt \\
        --data.root /path/to/coop_data --data.dataset oxford_pets --seeds 1 2 3 --output_dir runs/coop-pets
"""

from __future__ import annotations

from .config import TrainConfig
from .protocols import PROTOCOLS

__all__ = ["PRESETS", "get_preset"]


def _testbed(
    name: str,
    method: dict,
    *,
    protocol: str = "base_to_novel",
    data: dict | None = None,
    optim: dict | None = None,
    regularizers: list | None = None,
) -> TrainConfig:
    cfg = {
        "model": {"name": "testbed"},
        "data": {"dataset": "testbed", "protocol": protocol, **(data or {})},
        "method": method,
        "optim": optim or {},
        "regularizers": regularizers or [],
        "preset": name,
    }
    return TrainConfig.from_dict(cfg)


_COOP = {"epochs": 10, "batch_size": 16, "lr": 0.002}
_DEEP = {"epochs": 5, "batch_size": 8, "lr": 0.0035}

_TESTBED = {
    "testbed-zeroshot-b2n": _testbed("testbed-zeroshot-b2n", {"name": "zeroshot"}),
    "testbed-coop-b2n": _testbed("testbed-coop-b2n", {"name": "coop"}, optim=_COOP),
    "testbed-coop-fewshot": _testbed(
        "testbed-coop-fewshot", {"name": "coop", "n_ctx": 16, "ctx_init": ""}, protocol="few_shot", optim=_COOP
    ),
    "testbed-coop-imbalanced": _testbed(
        "testbed-coop-imbalanced", {"name": "coop"}, data={"imbalance_ratio": 4.0}, optim=_COOP
    ),
    "testbed-coop-xd": _testbed("testbed-coop-xd", {"name": "coop"}, protocol="cross_dataset", optim=_COOP),
    "testbed-coop-dg": _testbed("testbed-coop-dg", {"name": "coop"}, protocol="domain_generalization", optim=_COOP),
    "testbed-cocoop-b2n": _testbed(
        "testbed-cocoop-b2n", {"name": "cocoop"}, optim={"epochs": 2, "batch_size": 4, "lr": 0.002}
    ),
    "testbed-maple-b2n": _testbed("testbed-maple-b2n", {"name": "maple", "prompt_depth": 3}, optim=_DEEP),
    "testbed-ivlp-b2n": _testbed("testbed-ivlp-b2n", {"name": "ivlp", "prompt_depth": 3}, optim=_DEEP),
    "testbed-kgcoop-b2n": _testbed(
        "testbed-kgcoop-b2n", {"name": "coop"}, optim=_COOP, regularizers=[{"name": "kgcoop", "weight": 8.0}]
    ),
}


def _paper(method: str, protocol: str) -> TrainConfig:
    name = f"paper-{method}-{protocol}"
    return TrainConfig.from_dict(
        {
            "model": {"name": "ViT-B-16-quickgelu", "pretrained": "openai"},
            "data": {
                "dataset": "imagenet" if protocol in ("cross_dataset", "domain_generalization") else "oxford_pets",
                "protocol": protocol,
                "num_shots": 16,
            },
            "method": {"name": method},
            "seeds": [1, 2, 3],
            "preset": name,
        }
    )


_PAPER = {f"paper-{m}-{p}": _paper(m, p) for m in ("zeroshot", "coop", "cocoop", "maple", "ivlp") for p in PROTOCOLS}
_PAPER["paper-kgcoop-base_to_novel"] = TrainConfig.from_dict(
    {
        **_paper("coop", "base_to_novel").to_dict(),
        "preset": "paper-kgcoop-base_to_novel",
        "optim": {"epochs": 100, "batch_size": 128, "lr": 0.002},
        "regularizers": [{"name": "kgcoop", "weight": 8.0}],
    }
)

#: Preset name → config.
PRESETS: dict[str, TrainConfig] = {**_TESTBED, **_PAPER}


def get_preset(name: str) -> TrainConfig:
    """A copy of preset ``name``; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return TrainConfig.from_dict(PRESETS[name].to_dict())
