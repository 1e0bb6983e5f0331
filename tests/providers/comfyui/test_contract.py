"""The shared provider contract, on the fake ComfyUI (or a real one) with the weightfree workflow."""

from __future__ import annotations

from typing import Any

import pytest

from image_studio.providers.base import ImageProvider
from tests.providers.contract import ProviderContract


class TestComfyUIContract(ProviderContract):
    @pytest.fixture
    def provider(self, make_provider: Any) -> ImageProvider:
        return make_provider(workflow="weightfree")

    @pytest.fixture
    def down_provider(self, make_provider: Any, unused_port: int) -> ImageProvider:
        return make_provider(url=f"http://127.0.0.1:{unused_port}", workflow="weightfree", connect_timeout=2)
