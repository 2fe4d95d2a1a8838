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
import fcntl
import math
import os
import re
import signal
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carbonledger.inference import runs
from carbonledger.inference.counter import RequestCounter
from carbonledger.inference.split import VersionActivity, per_request, percentiles_ms, split_window
from carbonledger.mlflow_plugin.journal import Entry
from carbonledger.mlflow_plugin.safety import report_once

COMPONENTS = ("gpu", "cpu", "ram")
THREAD_NAME = "carbonledger-inference"
MAX_PENDING_WINDOWS = 1440  # a day of 1-minute windows per version while MLflow is unreachable
IDLE_EWMA = 0.3
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One window of one version, as logged to its inference run (energy in kWh)."""

    model_name: str
    model_version: int
    start_s: float
    end_s: float
    requests: int
    rows: int
    errors: int
    busy_s: float
    hosted_s: float
    energy_kwh: dict[str, float]
    active_energy_kwh: float
    idle_energy_kwh: float
    idle_method: str
    idle_power_w: float | None
    pue: float
    intensity_g_per_kwh: float
    latency_ms: dict[float, float] | None

    @property
    def it_energy_kwh(self) -> float:
        """GPU + CPU + RAM."""
        return sum(self.energy_kwh.values())

    @property
    def facility_energy_kwh(self) -> float:
        """IT energy x PUE."""
        return self.it_energy_kwh * self.pue

    @property
    def co2e_kg(self) -> float:
        """Facility energy x intensity."""
        return self.facility_energy_kwh * self.intensity_g_per_kwh / 1000.0

    def metrics(self) -> dict[str, float]:
        """The ``carbon/inference/*`` metrics of this window."""
        out = {
            runs.W_REQUESTS: float(self.requests),
            runs.W_ROWS: float(self.rows),
            runs.W_ERRORS: float(self.errors),
            runs.W_WINDOW_S: self.end_s - self.start_s,
            runs.W_BUSY_S: self.busy_s,
            runs.W_HOSTED_S: self.hosted_s,
            **{runs.W_COMPONENT[c]: self.energy_kwh.get(c, 0.0) for c in COMPONENTS},
            runs.W_ENERGY: self.it_energy_kwh,
            runs.W_ACTIVE: self.active_energy_kwh,
            runs.W_IDLE: self.idle_energy_kwh,
            runs.W_PUE: self.pue,
            runs.W_FACILITY: self.facility_energy_kwh,
            runs.W_INTENSITY: self.intensity_g_per_kwh,
            runs.W_CO2E: self.co2e_kg,
        }
        if self.requests:
            out[runs.W_WH_PER_REQUEST] = per_request(self.facility_energy_kwh, self.requests) or 0.0
            active = per_request(self.active_energy_kwh * self.pue, self.requests) or 0.0
            out[runs.W_ACTIVE_WH_PER_REQUEST] = active
            out[runs.W_G_PER_REQUEST] = self.co2e_kg * 1000.0 / self.requests
        if self.latency_ms:
            out.update({runs.W_LATENCY[p]: v for p, v in self.latency_ms.items()})
        if self.idle_power_w is not None:
            out[runs.W_IDLE_POWER] = self.idle_power_w
        return out


@dataclass
class _Hosted:
    """A hosted version and its current inference run."""

    counter: RequestCounter
    run_id: str | None = None
    day: str | None = None
    seq: int = 0
    energy_kwh: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    peak_power_w: float = 0.0
    requests: int = 0
    rows: int = 0
    tags_sent: dict[str, str] = field(default_factory=dict)
    pending: deque[WindowRecord] = field(default_factory=lambda: deque(maxlen=MAX_PENDING_WINDOWS))


def _default_send(entry: Entry) -> None:
    from carbonledger.mlflow_plugin import flusher

    flusher.ensure_started().submit(entry)


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
        send: Callable[[Entry], Any] = _default_send,
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
        self._window: Any = None
        self._last_kwh: dict[str, float] = {}
        self._start_s: float | None = None
        self._learned_idle_w: float | None = None
        self._methods: dict[str, tuple[str, bool]] = {}
        self._hardware_tags: dict[str, str] = {}
        self._role: str | None = None
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

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
            _live.add(self)
            _install_sigterm()
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
            report_once("inference meter election (metering the devices)", exc)
            self._role = "leader"
        if self._role != "leader":
            return
        try:
            meter = self._meter_factory()
            window = meter.open_window()
            first = window.read()
        except Exception as exc:  # noqa: BLE001 - no device readable: requests only
            report_once("inference meter (no energy, requests only)", exc)
            return
        self._window = window
        self._last_kwh = {c: first.energy_of(c) for c in COMPONENTS}
        self._methods = {c: (e.method, bool(e.measured)) for c, e in first.components.items()}
        try:
            self._hardware_tags = {k: str(v) for k, v in meter.hardware().as_tags().items()}
        except Exception:  # noqa: BLE001 - hardware tags are best effort
            self._hardware_tags = {}

    def _elect_role(self) -> str:
        from carbonledger.mlflow_plugin.distributed import lock_dir, node_id

        devices = _SAFE.sub("_", os.environ.get("CUDA_VISIBLE_DEVICES", "all") or "none")
        folder = lock_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"inference-{node_id()}-{devices}.lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return "follower"
        self._lock_fd = fd
        return "leader"

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
                report_once("inference window", exc)

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
        from carbonledger.mlflow_plugin.factors import get_factors

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
                    requests=c.requests,
                    busy_s=c.busy_s,
                    hosted_s=_overlap(h.counter, start, end),
                )
                for h, c in zip(hosted, counts, strict=True)
            ]
            idle_w = self.idle_power_w if self.idle_power_w is not None else self._learned_idle_w
            split = split_window(energy, duration, activity, idle_power_w=idle_w)
            total_hosted = sum(a.hosted_s for a in activity)
            if self._window is not None and split.idle_method == "no-requests" and duration > 0:
                if total_hosted >= duration * 0.999:  # only whole idle windows teach the baseline
                    sample_w = sum(energy.values()) * 3.6e6 / duration
                    prev = self._learned_idle_w
                    self._learned_idle_w = (
                        sample_w if prev is None else prev + IDLE_EWMA * (sample_w - prev)
                    )
            for h in hosted:
                if h.counter.closed_s is not None:
                    del self._hosted[h.counter]
        factors = get_factors()
        out = []
        for h, c, a, charge in zip(hosted, counts, activity, split.charges, strict=True):
            out.append(
                (
                    h,
                    WindowRecord(
                        model_name=h.counter.model_name,
                        model_version=h.counter.model_version,
                        start_s=start,
                        end_s=end,
                        requests=c.requests,
                        rows=c.rows,
                        errors=c.errors,
                        busy_s=c.busy_s,
                        hosted_s=a.hosted_s,
                        energy_kwh=charge.energy_kwh,
                        active_energy_kwh=charge.active_energy_kwh,
                        idle_energy_kwh=charge.idle_energy_kwh,
                        idle_method=split.idle_method,
                        idle_power_w=idle_w,
                        pue=factors.pue.value,
                        intensity_g_per_kwh=factors.grid.intensity_g_per_kwh,
                        latency_ms=percentiles_ms(c.latencies_s),
                    ),
                )
            )
        return out

    def _read_energy(self, *, final: bool) -> dict[str, float]:
        """Device energy since the previous read, per component (caller holds the lock)."""
        if self._window is None:  # a follower: another process meters the devices
            return {}
        result = self._window.close() if final else self._window.read()
        kwh = {c: result.energy_of(c) for c in COMPONENTS}
        delta = {
            c: max(0.0, kwh[c] - self._last_kwh.get(c, 0.0))
            for c in COMPONENTS
            if c in result.components
        }
        self._last_kwh = kwh
        self._methods = {c: (e.method, bool(e.measured)) for c, e in result.components.items()}
        return delta

    # -- MLflow side ------------------------------------------------------------------------
    def _tags(self, h: _Hosted, record: WindowRecord) -> dict[str, str]:
        from carbonledger.mlflow_plugin.factors import get_factors
        from carbonledger.mlflow_plugin.tracker import plugin_version
        from carbonledger.settings import get_settings

        measured = [m for _, m in self._methods.values()]
        tags = {
            "carbon.kind": "inference",
            "carbon.model_name": h.counter.model_name,
            "carbon.model_version": str(h.counter.model_version),
            "carbon.plugin_version": plugin_version(),
            "carbon.metered": "true",
            "carbon.status": "running",
            "carbon.window_s": f"{self.window_s:g}",
            "carbon.inference_meter": self.role,
            "carbon.inference_host": f"{socket.gethostname()}:{os.getpid()}",
            "carbon.idle_method": record.idle_method,
            "carbon.attribution": "device",
            "carbon.node_count": "1",
            "carbon.methods": ";".join(f"{c}={m}" for c, (m, _) in sorted(self._methods.items())),
            "carbon.measured": (
                "true" if measured and all(measured) else "partial" if any(measured) else "false"
            ),
        }
        tags.update(self._hardware_tags)
        tags.update(get_factors().tags)
        team = h.counter.team or self.team or get_settings().team
        if team:
            tags["carbon.team"] = team
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
                    start_ms=int(record.start_s * 1000),
                    tags=tags,
                )
            except Exception as exc:  # noqa: BLE001 - keep the window, retry next time
                report_once("inference run creation (windows kept in memory)", exc)
                if len(h.pending) == MAX_PENDING_WINDOWS:
                    report_once("inference windows in memory", OverflowError("oldest dropped"))
                h.pending.append(record)
                return
            h.day, h.seq, h.tags_sent = day, 0, tags
            h.energy_kwh, h.duration_s, h.peak_power_w, h.requests, h.rows = {}, 0.0, 0.0, 0, 0
        h.pending.append(record)
        while h.pending:
            self._send(self._entry(h, h.pending.popleft()))

    def _entry(self, h: _Hosted, record: WindowRecord) -> Entry:
        from carbonledger.mlflow_plugin.tracker import M_HEARTBEAT, Usage, derived_metrics

        assert h.run_id is not None
        h.seq += 1
        for c, v in record.energy_kwh.items():
            h.energy_kwh[c] = h.energy_kwh.get(c, 0.0) + v
        duration = record.end_s - record.start_s
        h.duration_s += duration
        if duration > 0:
            h.peak_power_w = max(h.peak_power_w, record.it_energy_kwh * 3.6e6 / duration)
        h.requests += record.requests
        h.rows += record.rows
        start_ms, end_ms = int(record.start_s * 1000), int(record.end_s * 1000)
        rows: list[list[float | str | int]] = [
            [k, v, start_ms, h.seq] for k, v in record.metrics().items()
        ]
        totals = derived_metrics(Usage(dict(h.energy_kwh), h.duration_s, h.peak_power_w))
        totals.update(
            {
                runs.T_REQUESTS: float(h.requests),
                runs.T_ROWS: float(h.rows),
                runs.T_WINDOWS: float(h.seq),
            }
        )
        totals[M_HEARTBEAT] = float(end_ms)
        rows += [[k, v, end_ms, h.seq] for k, v in totals.items()]
        tags = self._tags(h, record)
        changed = {k: v for k, v in tags.items() if h.tags_sent.get(k) != v}
        h.tags_sent.update(changed)
        return Entry(self.tracking_uri, h.run_id, rows, changed, end_ms)

    def _finish(self, h: _Hosted, *, end_s: float | None = None) -> None:
        """End the run (rotation, unloading or process exit): last tags, then FINISHED."""
        if h.run_id is None:
            return
        end_ms = int((end_s if end_s is not None else self._clock()) * 1000)
        tags = {"carbon.status": "complete"}
        self._send(Entry(self.tracking_uri, h.run_id, [], tags, end_ms, "FINISHED", end_ms))
        h.run_id = h.day = None

    # -- shutdown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the last (partial) window, send it synchronously, end every run; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        try:
            if self._send is _default_send:
                from carbonledger.mlflow_plugin import flusher

                self._send = flusher.deliver  # the queue may not be drained at exit
            self.close_window(final=True)
        except Exception as exc:  # noqa: BLE001
            report_once("inference meter close", exc)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _overlap(counter: RequestCounter, start: float, end: float) -> float:
    lo = max(start, counter.registered_s)
    hi = min(end, counter.closed_s if counter.closed_s is not None else end)
    return max(0.0, hi - lo)


_live: weakref.WeakSet[InferenceMeter] = weakref.WeakSet()
_sigterm_previous: Any = None


def _install_sigterm() -> None:
    """Chain a SIGTERM handler that closes the meters (main thread, Python handlers only).

    uvicorn (``mlflow models serve``) captures SIGTERM while it serves, then restores the
    previous handler and re-raises the signal after its graceful shutdown: so the last window
    and the runs' end are written even though the process dies by the signal (``atexit``
    does not run then). Same chaining rules as the training plugin's handler.
    """
    global _sigterm_previous
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_IGN, None, _on_sigterm):
            return
        _sigterm_previous = previous
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError) as exc:
        report_once("inference SIGTERM handler install", exc)


def _on_sigterm(signum: int, frame: Any) -> None:
    from carbonledger.mlflow_plugin import transport

    try:
        with transport.deadline():  # all final sends together: at most flush_timeout_s
            for meter in list(_live):
                meter.close()
    except Exception as exc:  # noqa: BLE001
        report_once("inference SIGTERM close", exc)
    previous = _sigterm_previous
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


_meter: InferenceMeter | None = None
_meter_lock = threading.Lock()


def inference_meter(**kwargs: Any) -> InferenceMeter:
    """The process-wide meter, created on first use with ``kwargs`` (later ones are ignored)."""
    global _meter
    with _meter_lock:
        if _meter is None or _meter._closed:
            _meter = InferenceMeter(**kwargs)
        return _meter


def reset() -> None:
    """Close and forget the process-wide meter (tests, forked children)."""
    global _meter
    with _meter_lock:
        meter, _meter = _meter, None
    if meter is not None:
        meter.close()


def _forget_in_child() -> None:
    global _meter
    _meter = None  # the parent's thread, window and runs stay the parent's


os.register_at_fork(after_in_child=_forget_in_child)
