"""The ``mlflow.run_context_provider`` entry point: cheap, idempotent, never raises.

MLflow instantiates :class:`CarbonRunContextProvider` while ``import mlflow`` runs. The
constructor starts no thread and touches no device: it only arranges for the lifecycle hooks
(:mod:`carbonledger.mlflow_plugin.hooks`) to be installed. Any failure degrades to one warning;
``CARBONLEDGER_DISABLE=1`` makes it do nothing at all.
"""

from __future__ import annotations

import logging
import os
import warnings

_TRUE = {"1", "true", "yes", "on"}


def _disabled_by_env() -> bool:
    return os.environ.get("CARBONLEDGER_DISABLE", "").strip().lower() in _TRUE


class CarbonRunContextProvider:
    """Run context provider: tags fluent runs and installs the lifecycle hooks."""

    def __init__(self) -> None:
        self._ok = False
        if _disabled_by_env():
            return
        try:
            from carbonledger.mlflow_plugin import hooks

            hooks.install_when_ready()
            self._ok = True
        except Exception as exc:  # noqa: BLE001 - `import mlflow` must never fail because of us
            warnings.warn(
                f"carbonledger MLflow plugin disabled: {type(exc).__name__}: {exc} "
                "(runs are not metered; set CARBONLEDGER_DISABLE=1 to silence this)",
                RuntimeWarning,
                stacklevel=2,
            )
            logging.getLogger("carbonledger.mlflow_plugin").debug("entry point", exc_info=True)

    def in_context(self) -> bool:
        """True when the plugin is active (called for every fluent run creation)."""
        return self._ok and not _disabled_by_env()

    def tags(self) -> dict[str, str]:
        """Static tags for a fluent run about to be created (no run id yet; cheap)."""
        try:
            from carbonledger.contract import TAG_PLUGIN_VERSION
            from carbonledger.mlflow_plugin import hooks
            from carbonledger.mlflow_plugin.tags import configured_tags, plugin_version
            from carbonledger.settings import get_settings

            hooks.install_when_ready()
            if get_settings().disable:
                return {}
            return {TAG_PLUGIN_VERSION: plugin_version(), **configured_tags()}
        except Exception:  # noqa: BLE001 - MLflow would log it; we stay silent and cheap
            return {}
