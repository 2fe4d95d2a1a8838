"""One tracked MLflow run: the energy charged to it and the batches that report it.

A :class:`RunTracker` holds cumulative per-component energy (kWh) that the
:class:`~carbonledger.mlflow_plugin.accounting.Accountant` adds to it, and turns it into the
public ``carbon/*`` metrics and ``carbon.*`` tags (see docs/plugin.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carbonledger.contract import (
    COMPONENTS,
    M_COMPONENT_ENERGY_KWH,
    M_DURATION_S,
    M_GPU_REMAINDER_KWH,
    M_HEARTBEAT_MS,
    M_PEAK_POWER_W,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    TAG_STATUS,
)
from carbonledger.mlflow_plugin.journal import Entry
from carbonledger.mlflow_plugin.tags import metered_tags
from carbonledger.mlflow_plugin.totals import Usage, derived_metrics, peak_power_w
from carbonledger.mlflow_plugin.transport import now_ms


@dataclass
class RunTracker:
    """The plugin's state for one run in this process.

    Attributes:
        run_id: MLflow run id.
        tracking_uri: tracking URI the run lives on.
        parent_id: ``mlflow.parentRunId`` when the run is nested.
        start_s: when metering began (epoch s).
        energy_kwh: cumulative energy charged so far, per component.
        peak_power_w: highest power charged over one accounting interval.
        methods: component -> (method, measured) as the meter reported them.
        gpu_remainder_kwh: this run's part of its shared GPUs' remainder (never in its energy).
        base: metric values already on a resumed run (added to this session's).
        base_step: first step of this session (resumed runs continue the step count).
        node: distributed role, or None for a single-process run.
    """

    run_id: str
    tracking_uri: str
    parent_id: str | None = None
    start_s: float = field(default_factory=time.time)
    energy_kwh: dict[str, float] = field(default_factory=dict)
    peak_power_w: float = 0.0
    methods: dict[str, tuple[str, bool]] = field(default_factory=dict)
    gpu_remainder_kwh: float = 0.0
    hardware_tags: dict[str, str] = field(default_factory=dict)
    attribution: str = "device"
    base: dict[str, float] = field(default_factory=dict)
    base_step: int = 0
    node: Any = None  # distributed.NodeRole
    parent: RunTracker | None = None
    root: RunTracker | None = None
    last_read_s: float = 0.0
    seq: int = 0
    ended: bool = False
    final_sent: bool = False
    tags_sent: dict[str, str] = field(default_factory=dict)
    running_sent: bool = False  # a batch carrying carbon.status=running has left this process
    running_unconfirmed: bool = False  # ...and the server never confirmed it
    attached: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)

    def charge(self, delta_kwh: dict[str, float], interval_s: float, now_s: float) -> None:
        """Add one interval's share of energy (called by the accountant under its lock)."""
        for c, v in delta_kwh.items():
            self.energy_kwh[c] = self.energy_kwh.get(c, 0.0) + v
        self.peak_power_w = peak_power_w(self.peak_power_w, delta_kwh, interval_s)
        self.last_read_s = now_s

    def usage(self) -> Usage:
        """This session's energy plus what a resumed run already had."""
        energy = {
            c: self.energy_kwh.get(c, 0.0) + self.base.get(M_COMPONENT_ENERGY_KWH[c], 0.0)
            for c in COMPONENTS
        }
        duration = max(0.0, self.last_read_s - self.start_s) + self.base.get(M_DURATION_S, 0.0)
        peak = max(self.peak_power_w, self.base.get(M_PEAK_POWER_W, 0.0))
        return Usage(energy_kwh=energy, duration_s=duration, peak_power_w=peak)

    def tags(self, *, final: bool) -> dict[str, str]:
        """The ``carbon.*`` tags of every flush (team and model name: see ``configured_tags``)."""
        return metered_tags(
            methods=self.methods,
            attribution=self.attribution,
            hardware_tags=self.hardware_tags,
            final=final,
            node_count=1 if self.node is None else None,  # distributed: counted from the nodes
        )

    def entry(self, *, final: bool) -> Entry | None:
        """The batch to log now (None when this process has nothing to report for the run)."""
        with self.lock:
            return self._entry(final=final)

    def _entry(self, *, final: bool) -> Entry | None:
        """The body of :meth:`entry`; the caller holds the lock (or gave up waiting: final)."""
        self.seq += 1
        ts = now_ms()
        if self.node is not None:
            from carbonledger.mlflow_plugin.distributed import node_batch

            return self._running_once(node_batch(self, ts=ts, final=final))
        step = self.base_step + self.seq
        metrics: dict[str, float] = derived_metrics(self.usage())
        metrics[M_HEARTBEAT_MS] = float(ts)
        remainder = self.gpu_remainder_kwh + self.base.get(M_GPU_REMAINDER_KWH, 0.0)
        if remainder > 0:  # only runs on shared GPUs have one
            metrics[M_GPU_REMAINDER_KWH] = remainder
        rows: list[list[float | str | int]] = [[k, v, ts, step] for k, v in metrics.items()]
        tags = {k: v for k, v in self.tags(final=final).items() if self.tags_sent.get(k) != v}
        return self._running_once(Entry(self.tracking_uri, self.run_id, rows, tags, ts))

    def _running_once(self, entry: Entry | None) -> Entry | None:
        """Let ``carbon.status=running`` leave this process in one batch only.

        A send that failed may still land: the client gave up at ``flush_timeout_s``, but the
        server can commit the request later (an MLflow server on SQLite waits up to 20 s for its
        lock). A late ``running`` would overwrite the final flush's ``complete``, so only the
        first periodic batch carries it, whatever became of it (see :meth:`_flush_final`).
        """
        if entry is None or entry.tags.get(TAG_STATUS) != STATUS_RUNNING:
            return entry
        if self.running_sent:
            del entry.tags[TAG_STATUS]
        else:
            self.running_sent = self.running_unconfirmed = True
        return entry

    def flush(self, *, final: bool, send: Callable[[Entry], bool]) -> None:
        """Build and send one batch; flushes of one run never overlap or reorder.

        The final flush waits for a periodic flush in flight only as long as its own send
        budget allows (the wait counts against ``flush_timeout_s``); past that it builds the
        final batch anyway and ``send`` journals it with the budget spent, so ``end_run``
        never waits more than one flush timeout on the plugin.
        """
        if final:
            self._flush_final(send)
            return
        with self.lock:
            if self.final_sent or self.ended:
                return
            entry = self._entry(final=False)
            if entry is not None and send(entry):
                self.delivered(entry)

    def _flush_final(self, send: Callable[[Entry], bool]) -> None:
        from carbonledger.mlflow_plugin import transport

        held = self.lock.acquire(timeout=transport.budget_left_s())
        try:
            if self.final_sent:
                return
            entry = self._entry(final=True)
            if entry is not None and send(entry):
                self.delivered(entry)
                if self.running_unconfirmed:
                    # The one ``running`` batch failed and may still land after this one:
                    # journal ``complete`` once more, so a replay (the next plugin process on
                    # the machine, or ``carbonledger journal flush``) has the last word.
                    from carbonledger.mlflow_plugin import journal

                    tags = {TAG_STATUS: STATUS_COMPLETE}
                    journal.append(Entry(self.tracking_uri, self.run_id, [], tags, now_ms()))
            self.final_sent = True
        finally:
            if held:
                self.lock.release()

    def delivered(self, entry: Entry) -> None:
        """Remember the tags the server took, so later batches send only changes."""
        self.tags_sent.update(entry.tags)
        if entry.tags.get(TAG_STATUS) == STATUS_RUNNING:
            self.running_unconfirmed = False
