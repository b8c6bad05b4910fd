"""Shared fixtures of the data tests."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from fatsr.data.degrade_presets import load_preset


def _first_stage_only(**changes: object) -> dict:
    """The bicubic preset (nothing but a resize) with a first stage doing only ``changes``."""
    preset = load_preset("bicubic")
    stage = copy.deepcopy(load_preset("realesrgan")["first"])
    stage.update(blur_prob=0.0, noise=None, jpeg=None, resize_to=None)
    stage["resize"]["probs"] = {"keep": 1.0}
    stage.update(changes)
    preset["first"] = stage
    return preset


@pytest.fixture
def first_stage_only() -> Callable[..., dict]:
    """Builds a preset whose only degradation is the given first-stage settings."""
    return _first_stage_only
