"""The ``carbon.*`` tags every metered run carries, built in one place.

The training plugin and the inference meter tag their runs with :func:`metered_tags`
(plugin version, metered, status, attribution, methods, measured, node count, hardware,
location and factor provenance, team); runs the plugin does not meter get
:func:`unmetered_tags`. docs/plugin.md documents every tag.
"""

from __future__ import annotations

from collections.abc import Mapping

from carbonledger.contract import (
    STATUS_COMPLETE,
    STATUS_RUNNING,
    TAG_ATTRIBUTION,
    TAG_MEASURED,
    TAG_METERED,
    TAG_METHODS,
    TAG_MODEL_NAME,
    TAG_NODE_COUNT,
    TAG_PLUGIN_VERSION,
    TAG_STATUS,
    TAG_TEAM,
    TAG_UNMETERED_REASON,
)

Methods = Mapping[str, tuple[str, bool]]
"""component -> (method, measured), as the meter reports them."""


def plugin_version() -> str:
    """The carbonledger version recorded in ``carbon.plugin_version``."""
    from carbonledger import __version__

    return __version__


def methods_tag(methods: Methods) -> str:
    """``carbon.methods``: ``gpu=nvml-energy-counter;cpu=rapl;...`` sorted by component."""
    return ";".join(f"{c}={m}" for c, (m, _) in sorted(methods.items()))


def measured_tag(methods: Methods) -> str:
    """``carbon.measured``: ``true`` (every component measured), ``partial`` or ``false``."""
    measured = [m for _, m in methods.values()]
    return "true" if measured and all(measured) else "partial" if any(measured) else "false"


def status_tags(*, final: bool) -> dict[str, str]:
    """``carbon.status`` (``complete`` after the final flush, else ``running``) and metered."""
    return {TAG_STATUS: STATUS_COMPLETE if final else STATUS_RUNNING, TAG_METERED: "true"}


def metered_tags(
    *,
    methods: Methods,
    attribution: str,
    hardware_tags: Mapping[str, str],
    final: bool = False,
    node_count: int | None = 1,
    team: str | None = None,
) -> dict[str, str]:
    """The tags of every flush of a metered run.

    Args:
        methods: component -> (method, measured) of the meter.
        attribution: ``device`` or ``process``.
        hardware_tags: ``carbon.gpu_model`` and the other hardware tags.
        final: the run's last flush (``carbon.status=complete``).
        node_count: ``carbon.node_count`` (None: not set here; distributed runs count nodes).
        team: ``carbon.team``, when the caller sets it on every flush.
    """
    from carbonledger.mlflow_plugin.factors import get_factors

    tags = {
        TAG_PLUGIN_VERSION: plugin_version(),
        **status_tags(final=final),
        TAG_ATTRIBUTION: attribution,
        TAG_METHODS: methods_tag(methods),
        TAG_MEASURED: measured_tag(methods),
    }
    if node_count is not None:
        tags[TAG_NODE_COUNT] = str(node_count)
    tags.update(hardware_tags)
    tags.update(get_factors().tags)
    if team:
        tags[TAG_TEAM] = team
    return tags


def unmetered_tags(reason: str) -> dict[str, str]:
    """The tags of a run the plugin does not meter, with the reason."""
    return {
        TAG_PLUGIN_VERSION: plugin_version(),
        TAG_METERED: "false",
        TAG_UNMETERED_REASON: reason,
    }


def configured_tags(run_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """``carbon.team`` / ``carbon.model_name`` from the settings that ``run_tags`` lack.

    A value already on the run (set by the user, or by the context provider for fluent runs)
    always wins: the plugin sets these tags once, at run start, and only when absent.
    """
    from carbonledger.settings import get_settings

    settings = get_settings()
    wanted = {TAG_TEAM: settings.team, TAG_MODEL_NAME: settings.model_name}
    return {k: v for k, v in wanted.items() if v and k not in (run_tags or {})}
