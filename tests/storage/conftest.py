"""Fixtures for the asset store tests: a store in a temporary directory, a request."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_studio.storage import LocalAssetStore
from image_studio.types import GenerationRequest


@pytest.fixture
def store(tmp_path: Path) -> LocalAssetStore:
    return LocalAssetStore(tmp_path / "assets", fsync=False)


@pytest.fixture
def request_() -> GenerationRequest:
    return GenerationRequest(
        prompt="a red fox, in the snow", negative_prompt="blurry", width=64, height=48, steps=20,
        sampler="euler", cfg_scale=7, seed=42, model="sdxl-base",
    )

