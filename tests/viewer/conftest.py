"""Fixtures the viewer tests share: ``viewer`` serves the test module's own ``run_db`` with
``clin view``; ``browser`` is one headless Chromium for the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .viewer_helpers import chromium, serving


@pytest.fixture(scope="module")
def viewer(run_db: dict) -> Iterator[str]:
    with serving(run_db["path"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b
