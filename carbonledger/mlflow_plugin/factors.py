"""Grid intensity, PUE and location tags, resolved once per process and cached.

Resolution is lazy (first flush, never at import) and cannot fail: if the intensity package
raises, the run falls back to the world average and PUE 1.56 (unknown data centre) and says so
in ``carbon.intensity_source`` / ``carbon.pue_source``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from carbonledger.intensity.factors import (
    RESOLVED_WORLD_DEFAULT,
    WORLD_AVERAGE_G_PER_KWH,
    GridFactor,
    PueFactor,
)
from carbonledger.mlflow_plugin.safety import report_once

UNKNOWN_DC_PUE = 1.56


@dataclass(frozen=True)
class Factors:
    """What turns energy into CO2e here, with the location tags."""

    grid: GridFactor
    pue: PueFactor
    tags: dict[str, str]


_lock = threading.RLock()  # re-entrant: the SIGTERM handler may flush while it is held
_cached: Factors | None = None


def _resolve() -> Factors:
    from carbonledger.settings import get_settings

    settings = get_settings()
    location = None
    try:
        from carbonledger.intensity import detect_location, resolve_intensity, resolve_pue

        location = detect_location(settings)
        grid = resolve_intensity(settings, location=location)
        pue = resolve_pue(settings, location=location)
    except Exception as exc:  # noqa: BLE001 - degrade to the documented defaults
        report_once("grid intensity resolution (using world average)", exc)
        grid = GridFactor(
            WORLD_AVERAGE_G_PER_KWH,
            source="iea-2019-world",
            year=2019,
            resolved_by=RESOLVED_WORLD_DEFAULT,
            note=f"intensity resolution failed: {type(exc).__name__}",
        )
        pue = PueFactor(UNKNOWN_DC_PUE, source="default", note="intensity resolution failed")
    tags = {
        "carbon.country": (getattr(location, "country", None) or grid.country or ""),
        "carbon.cloud_provider": getattr(location, "cloud_provider", None) or "",
        "carbon.cloud_region": getattr(location, "cloud_region", None) or "",
        "carbon.grid_zone": (getattr(location, "grid_zone", None) or grid.zone or ""),
        "carbon.intensity_source": grid.label,
        "carbon.intensity_resolved_by": grid.resolved_by,
        "carbon.pue_source": pue.source,
    }
    return Factors(grid=grid, pue=pue, tags={k: v for k, v in tags.items() if v})


def get_factors() -> Factors:
    """The process's factors (resolved on first use)."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = _resolve()
        return _cached


def reset() -> None:
    """Forget the cached factors (tests, settings changes)."""
    global _cached
    with _lock:
        _cached = None
