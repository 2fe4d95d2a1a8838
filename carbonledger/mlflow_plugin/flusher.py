"""Off the hot path: one daemon thread sends periodic flushes and queued batches.

The thread starts lazily with the first tracked run (never at import). Every
``settings.flush_s`` it reads the accountant and sends each run's cumulative metrics; batches
from hooks wait in a bounded queue (a full queue sends them to the journal, never blocks).
Sending uses :mod:`transport` (no retries, ``flush_timeout_s``); a failed send goes to the
journal. Only this thread replays the journal: after a tick in which a tracking URI took a
batch, at most ``REPLAY_PER_TICK`` sends for it, each one run's journaled batches merged
(this process's file and those of dead writers). The final flush of a run never replays.
"""

from __future__ import annotations

import queue
import threading
import time

from carbonledger.mlflow_plugin import journal, transport
from carbonledger.mlflow_plugin.journal import Entry
from carbonledger.mlflow_plugin.safety import report_once
from carbonledger.mlflow_plugin.state import plugin_state

QUEUE_SIZE = 256
THREAD_NAME = "carbonledger-flusher"
REPLAY_PER_TICK = 16  # replay sends (one run's merged entries each) per tracking URI per tick


def deliver(entry: Entry) -> bool:
    """Send one batch now; journal it on failure. Returns True when the server took it.

    Never replays the journal (the flusher thread does, see :meth:`Flusher.replay_journal`).
    """
    try:
        transport.send(entry)
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad creds, timeout...
        report_once(f"flush to {entry.tracking_uri} (journaled for replay)", exc)
        journal.append(entry)
        return False
    plugin_state().delivered_uris.add(entry.tracking_uri)  # the flusher replays for it
    return True


def submit(entry: Entry) -> None:
    """Queue a batch for the flusher thread (started if needed); never blocks."""
    ensure_started().submit(entry)


class Flusher:
    """The periodic flusher thread and its bounded queue."""

    def __init__(self, flush_s: float) -> None:
        self.flush_s = flush_s
        self.queue: queue.Queue[Entry | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stop = threading.Event()
        self.flushes = 0
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self.thread.start()

    def submit(self, entry: Entry) -> None:
        """Queue a batch for the thread; when the queue is full, journal it instead."""
        try:
            self.queue.put_nowait(entry)
        except queue.Full:
            journal.append(entry)

    def _run(self) -> None:
        from carbonledger.mlflow_plugin.factors import get_factors

        try:  # resolve intensity/PUE here, off the training thread, before the first flush
            get_factors()
        except Exception as exc:  # noqa: BLE001
            report_once("factor resolution", exc)
        next_tick = time.monotonic() + self.flush_s
        while not self._stop.is_set():
            try:
                entry = self.queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                next_tick = time.monotonic() + self.flush_s
                self.periodic()
                continue
            try:
                if entry is not None:  # None only wakes the thread to stop
                    deliver(entry)
                    if self.queue.qsize() == 0:
                        self.replay_journal()
            finally:
                self.queue.task_done()

    def periodic(self) -> None:
        """Charge energy up to now and send every active run's cumulative metrics."""
        from carbonledger.mlflow_plugin.accounting import accountant
        from carbonledger.mlflow_plugin.registry import registry

        try:
            accountant().advance()
            for tracker in registry().trackers():
                tracker.flush(final=False, send=deliver)
            self.flushes += 1
        except Exception as exc:  # noqa: BLE001
            report_once("periodic flush", exc)
        self.replay_journal()

    def replay_journal(self) -> None:
        """Replay a few journaled entries for each tracking URI that took a batch lately."""
        delivered = plugin_state().delivered_uris
        uris = set(delivered)
        delivered.difference_update(uris)
        for uri in sorted(uris):
            try:
                journal.replay(
                    transport.send, tracking_uri=uri, limit=REPLAY_PER_TICK, only_replayable=True
                )
            except Exception as exc:  # noqa: BLE001
                report_once("journal replay", exc)

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until the queued batches are sent or journaled; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the thread (see :func:`carbonledger.mlflow_plugin.state.reset`)."""
        self._stop.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        self.thread.join(timeout_s)


def ensure_started() -> Flusher:
    """Start the flusher thread on first use."""
    state = plugin_state()
    with state.lock:  # re-entrant: the SIGTERM handler may run while it is held
        if state.flusher is None or not state.flusher.thread.is_alive():
            from carbonledger.settings import get_settings

            state.flusher = Flusher(get_settings().flush_s)
        return state.flusher


def current() -> Flusher | None:
    """The running flusher, if any."""
    return plugin_state().flusher
