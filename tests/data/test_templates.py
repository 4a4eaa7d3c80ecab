"""CoOp templates (``trainers/zsclip.py``, ``trainers/imagenet_templates.py``)."""

from __future__ import annotations

import pytest

from ncprobe.data import (
    CUSTOM_TEMPLATES,
    IMAGENET_TEMPLATES,
    IMAGENET_TEMPLATES_SELECT,
    UnknownDatasetError,
    format_prompts,
    get_template,
)


def test_custom_templates():
    assert len(CUSTOM_TEMPLATES) == 15
    assert all(t.count("{}") == 1 for t in CUSTOM_TEMPLATES.values())
    assert CUSTOM_TEMPLATES["DescribableTextures"] == "{} texture."
    assert CUSTOM_TEMPLATES["EuroSAT"] == "a centered satellite photo of {}."
    assert CUSTOM_TEMPLATES["Food101"] == "a photo of {}, a type of food."
    assert CUSTOM_TEMPLATES["UCF101"] == "a photo of a person doing {}."
    assert CUSTOM_TEMPLATES["OxfordPets"] == "a photo of a {}, a type of pet."
    assert CUSTOM_TEMPLATES["StanfordCars"] == "a photo of a {}."


def test_imagenet_ensemble():
    assert len(IMAGENET_TEMPLATES) == 80 and len(set(IMAGENET_TEMPLATES)) == 80
    assert IMAGENET_TEMPLATES[0] == "a bad photo of a {}." and IMAGENET_TEMPLATES[-1] == "a tattoo of the {}."
    assert len(IMAGENET_TEMPLATES_SELECT) == 7 and set(IMAGENET_TEMPLATES_SELECT) <= set(IMAGENET_TEMPLATES)
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)


def test_get_template_and_format():
    assert get_template("flowers102") == "a photo of a {}, a type of flower."
    assert get_template("imagenet-r") == "a photo of a {}."
    with pytest.raises(UnknownDatasetError):
        get_template("mnist")
    got = format_prompts("{} texture.", ["banded", "polka_dotted"])
    assert got == ["banded texture.", "polka dotted texture."]
    with pytest.raises(ValueError, match="placeholder"):
        format_prompts("a photo", ["x"])
