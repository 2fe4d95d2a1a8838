"""Fixtures of the intensity tests: no cloud variables, no cached live answers, fresh warnings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carbonledger.intensity import live, resolve

CLOUD_ENV = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "GOOGLE_CLOUD_REGION",
    "CLOUDSDK_COMPUTE_REGION",
    "AZURE_REGION",
    "REGION_NAME",
)


@pytest.fixture(autouse=True)
def _clean_intensity_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in CLOUD_ENV:
        monkeypatch.delenv(key, raising=False)
    live.clear_live_cache()
    resolve._world_warned.clear()
    yield
    live.clear_live_cache()
