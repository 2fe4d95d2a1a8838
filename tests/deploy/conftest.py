"""Fixtures of the deployment tests: the parsed compose file and docker/.env.example."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deploy_helpers import COMPOSE, ENV_EXAMPLE, interpolate_tree, parse_env_file


@pytest.fixture(scope="session")
def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="session")
def compose(compose_raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The compose file as compose would see it with docker/.env copied from .env.example."""
    return interpolate_tree(compose_raw, env_example)
