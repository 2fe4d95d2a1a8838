"""Run lifecycle: what the hooks call when a run starts, resumes, attaches or ends.

``begin`` starts charging energy to a run (and starts the flusher thread and the SIGTERM
handler on first use); ``end`` charges up to now and writes the final batch synchronously,
before the caller sets the terminal status, within ``flush_timeout_s`` in all (what it cannot
send is journaled; the final flush never replays the journal). Runs created with a start time
in the past are not metered: they are tagged ``carbon.metered=false`` with a reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from carbonledger.contract import (
    M_COMPONENT_ENERGY_KWH,
    M_DURATION_S,
    M_ENERGY_KWH,
    M_GPU_REMAINDER_KWH,
    M_PEAK_POWER_W,
)
from carbonledger.mlflow_plugin import flusher, preflight, transport
from carbonledger.mlflow_plugin.accounting import accountant
from carbonledger.mlflow_plugin.journal import Entry
from carbonledger.mlflow_plugin.state import plugin_state
from carbonledger.mlflow_plugin.tags import configured_tags, unmetered_tags
from carbonledger.mlflow_plugin.tracker import RunTracker
from carbonledger.mlflow_plugin.transport import now_ms

# An explicit start_time older than the create_run call by more than this is "after the fact"
# (tagged carbon.unmetered_reason=contract.UNMETERED_AFTER_THE_FACT).
PAST_START_TOLERANCE_MS = 250
# Budget pre-flight seam (issue 5): callables ``check(run_id, tracking_uri, tags)`` run when a
# metered run is created. A ``BudgetExceededError`` they raise reaches the caller of
# ``create_run`` (policy ``block``); any other exception is reported once and ignored.
PREFLIGHT: list[Callable[[str, str, Mapping[str, str]], None]] = [preflight.check_budget]
RESUMABLE_METRICS = (
    *M_COMPONENT_ENERGY_KWH.values(),
    M_DURATION_S,
    M_PEAK_POWER_W,
    M_GPU_REMAINDER_KWH,
)


class Registry:
    """Every run this process reports on, metered or not."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._trackers: dict[str, RunTracker] = {}

    def trackers(self) -> list[RunTracker]:
        """Active trackers (a copy)."""
        with self._lock:
            return list(self._trackers.values())

    def get(self, run_id: str) -> RunTracker | None:
        """The tracker of ``run_id`` if this process tracks it."""
        return self._trackers.get(run_id)

    def begin(
        self,
        run_id: str,
        tracking_uri: str,
        *,
        parent_id: str | None = None,
        base: Mapping[str, float] | None = None,
        base_step: int = 0,
        distributed: bool = False,
        run_tags: Mapping[str, str] | None = None,
    ) -> RunTracker:
        """Start tracking a run (idempotent).

        ``run_tags`` are the tags the run has now (the hooks see them): ``carbon.team`` /
        ``carbon.model_name`` from the settings are set once, off this thread, only when the
        run does not have them. Without ``run_tags`` (attached ranks) they are not set.
        """
        from carbonledger.mlflow_plugin import distributed as dist
        from carbonledger.mlflow_plugin import signals

        with self._lock:
            existing = self._trackers.get(run_id)
            if existing is not None:
                return existing
            tracker = RunTracker(run_id=run_id, tracking_uri=tracking_uri, parent_id=parent_id)
            tracker.node = dist.role_for(run_id, force=distributed)
            if tracker.node is None and base:
                tracker.base = {k: float(v) for k, v in base.items() if k in RESUMABLE_METRICS}
                tracker.base_step = base_step
            if tracker.node is None or tracker.node.leader:
                accountant().start(tracker)
            self._trackers[run_id] = tracker
        thread = flusher.ensure_started()
        signals.ensure_installed()
        missing = configured_tags(run_tags) if run_tags is not None else {}
        if missing:
            thread.submit(Entry(tracking_uri, run_id, [], missing, now_ms()))
        return tracker

    def end(self, run_id: str) -> RunTracker | None:
        """Charge up to now and deliver the final batch (synchronously, bounded by timeouts)."""
        with self._lock:
            tracker = self._trackers.pop(run_id, None)
        if tracker is None:
            return None
        accountant().stop(run_id)
        tracker.ended = True
        try:
            with transport.deadline():  # the whole final flush: at most flush_timeout_s
                tracker.flush(final=True, send=flusher.deliver)
        finally:
            if tracker.node is not None:
                tracker.node.release()
        return tracker

    def mark_unmetered(self, tracking_uri: str, run_id: str, reason: str) -> None:
        """Tag a run the plugin does not meter, off the hot path."""
        flusher.submit(Entry(tracking_uri, run_id, [], unmetered_tags(reason), now_ms()))


def resumed_base(metrics: Mapping[str, float]) -> dict[str, float]:
    """The carbon metrics a resumed run already carries (its previous sessions)."""
    return {k: v for k, v in metrics.items() if k in RESUMABLE_METRICS or k == M_ENERGY_KWH}


def registry() -> Registry:
    """The process-wide registry."""
    return plugin_state().registry
