"""Fixtures every adapter test shares: the shared HTTP client and a respx router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client an adapter gets from the studio (respx sees every call it makes)."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router active for the test; routes not called are fine."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock
