"""The serving process's inference meter: windows of device energy and requests per version.

One :class:`InferenceMeter` per process (:func:`inference_meter`) hosts the versions that
metered models register. A daemon thread (``carbonledger-inference``), started with the first
registration, closes a window at every multiple of ``window_s`` of the wall clock (default
60 s, so windows of different processes line up): it reads the device energy since the last
window (one window on ``carbonledger.measure.shared_meter()``), takes every version's
counters, splits the energy (:mod:`carbonledger.inference.split`) and hands one batch per
version to the plugin's flusher (queued, sent with no retries, journaled when MLflow is
unreachable). Nothing of this runs on the request path.

Several serving processes on one machine (``mlflow models serve --workers N``) elect one
**leader** per node and set of visible GPUs (an exclusive ``flock``): only the leader meters
the devices; followers report requests and latency with zero energy, so the devices are
counted once (``carbon.inference_meter`` says which).
"""

from __future__ import annotations

import atexit
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carbonledger.contract import (
    KIND_INFERENCE,
    M_HEARTBEAT_MS,
    MS_PER_S,
    STATUS_COMPLETE,
    TAG_IDLE_METHOD,
    TAG_INFERENCE_HOST,
    TAG_INFERENCE_METER,
    TAG_KIND,
    TAG_MODEL_NAME,
    TAG_MODEL_VERSION,
    TAG_STATUS,
    TAG_WINDOW_S,
    W_REQUESTS_TOTAL,
    W_ROWS_TOTAL,
    W_WINDOWS_TOTAL,
    average_power_w,
)
from carbonledger.inference import runs
from carbonledger.inference.counter import RequestCounter
from carbonledger.inference.record import WindowRecord
from carbonledger.inference.split import (
    IDLE_NO_REQUESTS,
    VersionActivity,
    percentiles_ms,
    split_window,
)
from carbonledger.mlflow_plugin import api

THREAD_NAME = "carbonledger-inference"
MAX_PENDING_WINDOWS = 1440  # a day of 1-minute windows per version while MLflow is unreachable
IDLE_EWMA = 0.3
SIGNAL_OWNER = "inference"


@dataclass
class _Hosted:
    """A hosted version and its current inference run."""

    counter: RequestCounter
    run_id: str | None = None
    day: str | None = None
    seq: int = 0
    usage: api.Usage = field(default_factory=api.Usage)
    requests: int = 0
    rows: int = 0
    tags_sent: dict[str, str] = field(default_factory=dict)
    pending: deque[WindowRecord] = field(default_factory=lambda: deque(maxlen=MAX_PENDING_WINDOWS))


def _default_send(entry: api.Entry) -> None:
    api.submit(entry)


def _default_meter() -> Any:
    from carbonledger.measure import shared_meter

    return shared_meter()


class InferenceMeter:
    """Meters the model versions served by this process.

    Args:
        window_s: window length in seconds (windows end at multiples of it).
        tracking_uri: where the inference runs go (default: MLflow's current tracking URI).
        experiment: experiment of the inference runs (created when missing).
        team: ``carbon.team`` of the inference runs (default: ``CARBONLEDGER_TEAM``).
        idle_power_w: the devices' idle power, when known (else learned, see ``split``).
        meter_factory: returns a ``carbonledger.measure.Meter`` (tests pass a fake one).
        clock: epoch seconds (tests pass a ``FakeClock``).
        send: delivers one batch (default: the plugin's flusher queue).
        elect: elect one metering process per node (see the module docstring).
        start_thread: close windows on a daemon thread (tests call ``close_window``).
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        tracking_uri: str | None = None,
        experiment: str = runs.DEFAULT_EXPERIMENT,
        team: str | None = None,
        idle_power_w: float | None = None,
        meter_factory: Callable[[], Any] = _default_meter,
        clock: Callable[[], float] = time.time,
        send: Callable[[api.Entry], Any] = _default_send,
        elect: bool = True,
        start_thread: bool = True,
    ) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be positive")
        self.window_s = float(window_s)
        self.experiment = experiment
        self.team = team
        self.idle_power_w = idle_power_w
        self._tracking_uri = tracking_uri
        self._meter_factory = meter_factory
        self._clock = clock
        self._send = send
        self._elect = elect
        self._start_thread = start_thread
        self._lock = threading.RLock()
        self._publish_lock = threading.RLock()  # re-entrant: the SIGTERM handler closes
        self._hosted: dict[RequestCounter, _Hosted] = {}
        self._reader: api.WindowReader | None = None
        self._start_s: float | None = None
        self._learned_idle_w: float | None = None
        self._role: str | None = None
        self._election: api.NodeLock | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child does not close its parent's runs

    # -- registration (model load time) ---------------------------------------------------
    def register(
        self, model_name: str, model_version: int | str, *, team: str | None = None
    ) -> RequestCounter:
        """Host a version in this process; returns the counter its predict calls feed."""
        with self._lock:
            self._open()
            counter = RequestCounter(
                model_name, int(model_version), registered_s=self._clock(), team=team
            )
            self._hosted[counter] = _Hosted(counter)
        if self._start_thread and self._thread is None:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
            atexit.register(self.close)
            api.plugin_state().inference_meters.add(self)
            api.chain_signal(SIGNAL_OWNER, _close_live_meters, where="inference SIGTERM close")
        return counter

    def unregister(self, counter: RequestCounter) -> None:
        """Stop hosting a version (it is charged up to now; its run ends at the next window)."""
        counter.closed_s = self._clock()

    @property
    def role(self) -> str:
        """``leader`` (meters the devices) or ``follower`` (counts requests only)."""
        return self._role or "leader"

    @property
    def tracking_uri(self) -> str:
        """Where the inference runs go."""
        if self._tracking_uri is None:
            import mlflow

            self._tracking_uri = mlflow.get_tracking_uri()
        return self._tracking_uri

    def _open(self) -> None:
        # Caller holds the lock. Never raises: serving must start even if metering cannot.
        if self._start_s is not None:
            return
        self._start_s = self._clock()
        try:
            self._role = self._elect_role() if self._elect else "leader"
        except OSError as exc:
            api.report_once("inference meter election (metering the devices)", exc)
            self._role = "leader"
        if self._role != "leader":
            return
        try:
            self._reader = api.WindowReader(self._meter_factory())
        except Exception as exc:  # noqa: BLE001 - no device readable: requests only
            api.report_once("inference meter (no energy, requests only)", exc)

    def _elect_role(self) -> str:
        """One leader per node and set of visible GPUs (see the module docstring)."""
        devices = api.safe_name(os.environ.get("CUDA_VISIBLE_DEVICES", "all") or "none")
        self._election = api.elect(f"inference-{api.node_id()}-{devices}")
        return "leader" if self._election is not None else "follower"

    # -- windows (meter thread) -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            now = time.time()
            boundary = (math.floor(now / self.window_s) + 1) * self.window_s
            if self._stop.wait(max(0.0, boundary - now)):
                return
            try:
                self.close_window()
            except Exception as exc:  # noqa: BLE001 - the meter must never break serving
                api.report_once("inference window", exc)

    def close_window(self, *, final: bool = False) -> list[WindowRecord]:
        """Close the current window, log one batch per hosted version, start the next one."""
        with self._publish_lock:
            records = self._close(final=final)
            for hosted, record in records:
                if record.end_s > record.start_s or record.requests:  # skip empty last windows
                    self._publish(hosted, record)
            for hosted in [h for h, _ in records if final or h.counter.closed_s is not None]:
                self._finish(hosted)
            return [r for _, r in records]

    def _close(self, *, final: bool) -> list[tuple[_Hosted, WindowRecord]]:
        with self._lock:
            if self._start_s is None:
                return []
            start, end = self._start_s, self._clock()
            self._start_s = end
            duration = max(0.0, end - start)
            energy = self._read_energy(final=final)
            hosted = list(self._hosted.values())
            if not hosted:
                return []  # nothing hosted: the energy of the gap is nobody's
            counts = [h.counter.take() for h in hosted]
            activity = [
                VersionActivity(
                    key=h.counter,
                    requests=n.requests,
                    busy_s=n.busy_s,
                    hosted_s=_overlap(h.counter, start, end),
                )
                for h, n in zip(hosted, counts, strict=True)
            ]
            idle_w = self.idle_power_w if self.idle_power_w is not None else self._learned_idle_w
            split = split_window(energy, duration, activity, idle_power_w=idle_w)
            total_hosted = sum(a.hosted_s for a in activity)
            if self._reader is not None and split.idle_method == IDLE_NO_REQUESTS and duration > 0:
                if total_hosted >= duration * 0.999:  # only whole idle windows teach the baseline
                    sample_w = average_power_w(sum(energy.values()), duration)
                    prev = self._learned_idle_w
                    self._learned_idle_w = (
                        sample_w if prev is None else prev + IDLE_EWMA * (sample_w - prev)
                    )
            for h in hosted:
                if h.counter.closed_s is not None:
                    del self._hosted[h.counter]
        factors = api.get_factors()
        out = []
        for h, n, a, charge in zip(hosted, counts, activity, split.charges, strict=True):
            out.append(
                (
                    h,
                    WindowRecord(
                        model_name=h.counter.model_name,
                        model_version=h.counter.model_version,
                        start_s=start,
                        end_s=end,
                        requests=n.requests,
                        rows=n.rows,
                        errors=n.errors,
                        busy_s=n.busy_s,
                        hosted_s=a.hosted_s,
                        energy_kwh=charge.energy_kwh,
                        active_energy_kwh=charge.active_energy_kwh,
                        idle_energy_kwh=charge.idle_energy_kwh,
                        idle_method=split.idle_method,
                        idle_power_w=idle_w,
                        pue=factors.pue.value,
                        intensity_g_per_kwh=factors.grid.intensity_g_per_kwh,
                        latency_ms=percentiles_ms(n.latencies_s),
                    ),
                )
            )
        return out

    def _read_energy(self, *, final: bool) -> dict[str, float]:
        """Device energy since the previous read, per component (caller holds the lock)."""
        if self._reader is None:  # a follower: another process meters the devices
            return {}
        return self._reader.read(final=final).energy_kwh

    # -- MLflow side ------------------------------------------------------------------------
    def _tags(self, h: _Hosted, record: WindowRecord) -> dict[str, str]:
        from carbonledger.settings import get_settings

        reader = self._reader
        tags = {
            TAG_KIND: KIND_INFERENCE,
            TAG_MODEL_NAME: h.counter.model_name,
            TAG_MODEL_VERSION: str(h.counter.model_version),
            TAG_WINDOW_S: f"{self.window_s:g}",
            TAG_INFERENCE_METER: self.role,
            TAG_INFERENCE_HOST: f"{socket.gethostname()}:{os.getpid()}",
            TAG_IDLE_METHOD: record.idle_method,
        }
        tags.update(
            api.metered_tags(
                methods=reader.methods if reader is not None else {},
                attribution=reader.attribution if reader is not None else "device",
                hardware_tags=reader.hardware_tags if reader is not None else {},
                team=h.counter.team or self.team or get_settings().team,
            )
        )
        return tags

    def _publish(self, h: _Hosted, record: WindowRecord) -> None:
        day = datetime.fromtimestamp(record.start_s, UTC).date().isoformat()
        if h.run_id is not None and h.day != day:
            self._finish(h, end_s=record.start_s)
        if h.run_id is None:
            tags = self._tags(h, record)
            name = f"inference {h.counter.model_name} v{h.counter.model_version} {day}"
            try:
                h.run_id = runs.create_run(
                    self.tracking_uri,
                    experiment=self.experiment,
                    run_name=name,
                    start_ms=int(record.start_s * MS_PER_S),
                    tags=tags,
                )
            except Exception as exc:  # noqa: BLE001 - keep the window, retry next time
                api.report_once("inference run creation (windows kept in memory)", exc)
                if len(h.pending) == MAX_PENDING_WINDOWS:
                    api.report_once("inference windows in memory", OverflowError("oldest dropped"))
                h.pending.append(record)
                return
            h.day, h.seq, h.tags_sent = day, 0, tags
            h.usage, h.requests, h.rows = api.Usage(), 0, 0
        h.pending.append(record)
        while h.pending:
            self._send(self._entry(h, h.pending.popleft()))

    def _entry(self, h: _Hosted, record: WindowRecord) -> api.Entry:
        assert h.run_id is not None
        h.seq += 1
        h.usage.add(record.energy_kwh, record.end_s - record.start_s)
        h.requests += record.requests
        h.rows += record.rows
        start_ms, end_ms = int(record.start_s * MS_PER_S), int(record.end_s * MS_PER_S)
        rows: list[list[float | str | int]] = [
            [k, v, start_ms, h.seq] for k, v in record.metrics().items()
        ]
        totals = api.derived_metrics(h.usage)
        totals.update(
            {
                W_REQUESTS_TOTAL: float(h.requests),
                W_ROWS_TOTAL: float(h.rows),
                W_WINDOWS_TOTAL: float(h.seq),
                M_HEARTBEAT_MS: float(end_ms),
            }
        )
        rows += [[k, v, end_ms, h.seq] for k, v in totals.items()]
        tags = self._tags(h, record)
        changed = {k: v for k, v in tags.items() if h.tags_sent.get(k) != v}
        h.tags_sent.update(changed)
        return api.Entry(self.tracking_uri, h.run_id, rows, changed, end_ms)

    def _finish(self, h: _Hosted, *, end_s: float | None = None) -> None:
        """End the run (rotation, unloading or process exit): last tags, then FINISHED."""
        if h.run_id is None:
            return
        end_ms = int((end_s if end_s is not None else self._clock()) * MS_PER_S)
        tags = {TAG_STATUS: STATUS_COMPLETE}
        self._send(api.Entry(self.tracking_uri, h.run_id, [], tags, end_ms, "FINISHED", end_ms))
        h.run_id = h.day = None

    # -- shutdown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the last (partial) window, send it synchronously, end every run; idempotent.

        In a forked child the meter is its parent's: closing it there only marks it closed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if os.getpid() != self._pid:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        try:
            if self._send is _default_send:
                self._send = api.deliver  # the queue may not be drained at exit
            self.close_window(final=True)
        except Exception as exc:  # noqa: BLE001
            api.report_once("inference meter close", exc)
        finally:
            if self._election is not None:
                self._election.release()
                self._election = None


def _overlap(counter: RequestCounter, start: float, end: float) -> float:
    lo = max(start, counter.registered_s)
    hi = min(end, counter.closed_s if counter.closed_s is not None else end)
    return max(0.0, hi - lo)


def _close_live_meters() -> None:
    """SIGTERM: close every meter with a running thread, all sends within one flush timeout.

    uvicorn (``mlflow models serve``) captures SIGTERM while it serves, then restores the
    previous handler and re-raises the signal after its graceful shutdown: so the last window
    and the runs' end are written even though the process dies by the signal (``atexit``
    does not run then).
    """
    with api.deadline():
        for meter in list(api.plugin_state().inference_meters):
            meter.close()


def inference_meter(**kwargs: Any) -> InferenceMeter:
    """The process-wide meter, created on first use with ``kwargs`` (later ones are ignored).

    It lives in the plugin's process state: ``carbonledger.mlflow_plugin.reset()`` closes it
    and a forked child starts without it.
    """
    state = api.plugin_state()
    with state.lock:
        meter = state.inference_meter
        if meter is None or meter._closed:
            meter = state.inference_meter = InferenceMeter(**kwargs)
        return meter
