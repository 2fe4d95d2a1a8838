"""Grid intensity, PUE and location tags, resolved once per process and cached.

Resolution (``carbonledger.intensity.place.resolve_place``, the resolver every surface uses)
is lazy (first flush, never at import) and cannot fail: if the intensity package
raises, the run falls back to the world average and PUE 1.56 (unknown data centre) and says so
in ``carbon.intensity_source`` / ``carbon.pue_source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbonledger.contract import (
    TAG_INTENSITY_RESOLVED_BY,
    TAG_INTENSITY_SOURCE,
    TAG_PUE_SOURCE,
)
from carbonledger.intensity.factors import (
    PUE_DEFAULT,
    RESOLVED_WORLD_DEFAULT,
    SOURCE_WORLD_DEFAULT,
    UNKNOWN_DATACENTRE_PUE,
    WORLD_AVERAGE_G_PER_KWH,
    GridFactor,
    PueFactor,
)
from carbonledger.mlflow_plugin.safety import report_once
from carbonledger.mlflow_plugin.state import plugin_state


@dataclass(frozen=True)
class Factors:
    """What turns energy into CO2e here, with the location tags."""

    grid: GridFactor
    pue: PueFactor
    tags: dict[str, str]


def _resolve() -> Factors:
    from carbonledger.settings import get_settings

    try:
        from carbonledger.intensity.place import resolve_place

        place = resolve_place(get_settings())
        return Factors(grid=place.grid, pue=place.pue, tags=place.tags())
    except Exception as exc:  # noqa: BLE001 - degrade to the documented defaults
        report_once("grid intensity resolution (using world average)", exc)
        grid = GridFactor(
            WORLD_AVERAGE_G_PER_KWH,
            source=SOURCE_WORLD_DEFAULT,
            year=2019,
            resolved_by=RESOLVED_WORLD_DEFAULT,
            note=f"intensity resolution failed: {type(exc).__name__}",
        )
        pue = PueFactor(
            UNKNOWN_DATACENTRE_PUE, source=PUE_DEFAULT, note="intensity resolution failed"
        )
        tags = {
            TAG_INTENSITY_SOURCE: grid.label,
            TAG_INTENSITY_RESOLVED_BY: grid.resolved_by,
            TAG_PUE_SOURCE: pue.source,
        }
        return Factors(grid=grid, pue=pue, tags=tags)


def get_factors() -> Factors:
    """The process's factors (resolved on first use, then kept in the plugin state)."""
    state = plugin_state()
    with state.factors_lock:  # re-entrant: the SIGTERM handler may flush while it is held
        if state.factors is None:
            state.factors = _resolve()
        return state.factors
