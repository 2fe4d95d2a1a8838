"""The local journal: metrics and tags the tracking server did not take, as JSONL.

Each process appends to its own file ``journal-<host>-<pid>.jsonl`` under
``settings.journal_path``; one line is one ``log_batch`` for one run on one tracking URI
(optionally with a terminal status to set). Every journal file has a lock file next to it
(``.lock``, ``fcntl.flock``) that an append and the read/rewrite steps of a replay take, so
they never race; the lock file is never replaced, so no append lands on an unlinked inode.

:func:`replay` sends entries back and removes the ones sent. The plugin replays from its
flusher thread only, a few entries per tick, and only its own file plus the files of writers
that are dead; ``carbonledger journal flush`` replays every file. Sends happen outside the
lock, so a slow server never blocks an append. A full or read-only disk degrades to dropping
the entry with one warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from carbonledger.contract import M_HEARTBEAT_MS, MS_PER_S, STATUS_RUNNING, TAG_STATUS
from carbonledger.mlflow_plugin.safety import report_once
from carbonledger.mlflow_plugin.state import plugin_state

MAX_READ_BYTES = 256 * 1024 * 1024  # a journal larger than this is read in later replays
MAX_BATCH_ITEMS = 1000  # MLflow's log_batch limits (metrics + params + tags; tags), kept by replays
MAX_BATCH_TAGS = 100


@dataclass
class Entry:
    """One unsent batch.

    Attributes:
        tracking_uri: where the run lives.
        run_id: the MLflow run.
        metrics: ``[key, value, timestamp_ms, step]`` rows.
        tags: tag name to value.
        created_ms: when the entry was journaled (epoch ms).
        status: terminal status to set after the batch (``KILLED`` from SIGTERM), or None.
        end_time_ms: end time that goes with ``status`` (epoch ms).
    """

    tracking_uri: str
    run_id: str
    metrics: list[list[float | str | int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    created_ms: int = 0
    status: str | None = None
    end_time_ms: int | None = None


_held = threading.local()  # lock files this thread holds (re-entry must not flock again)


def journal_dir() -> Path:
    """The journal folder from the settings."""
    from carbonledger.settings import get_settings

    return Path(get_settings().journal_path)


def _own_file(folder: Path) -> Path:
    return folder / f"journal-{socket.gethostname()}-{os.getpid()}.jsonl"


def _lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the journal file's lock file (re-entrant within one thread)."""
    held: set[str] = getattr(_held, "paths", set())
    _held.paths = held
    key = str(path)
    if key in held:
        yield
        return
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _line(entry: Entry) -> str:
    return json.dumps(asdict(entry), separators=(",", ":")) + "\n"


def append(entry: Entry, folder: Path | None = None) -> bool:
    """Append one entry; return False (after one warning) when the disk refuses it."""
    try:
        folder = folder or journal_dir()
        path = _own_file(folder)
        with plugin_state().journal_lock:
            folder.mkdir(parents=True, exist_ok=True)
            with _locked(path), open(path, "a", encoding="utf-8") as fh:
                fh.write(_line(entry))
                fh.flush()
        return True
    except OSError as exc:
        report_once("journal append (metrics dropped)", exc)
        return False


def files(folder: Path | None = None) -> list[Path]:
    """Journal files in the folder, oldest name first."""
    folder = folder or journal_dir()
    if not folder.is_dir():
        return []
    # Regular files only: a journal name linked to a device (/dev/full, /dev/zero) would be
    # an endless read.
    return sorted(p for p in folder.glob("journal-*.jsonl") if p.is_file())


def _read_lines(path: Path) -> list[str]:
    try:
        if not path.is_file():
            return []
        with path.open(encoding="utf-8", errors="replace") as handle:
            data = handle.read(MAX_READ_BYTES)
        if len(data) == MAX_READ_BYTES:  # keep a cut last line for the next replay
            data = data[: data.rfind("\n") + 1]
        return data.splitlines(keepends=True)
    except FileNotFoundError:
        return []


def _parse(raw: str) -> Entry | None:
    try:
        return Entry(**json.loads(raw))
    except (ValueError, TypeError):
        return None  # a torn write


def read(path: Path) -> list[Entry]:
    """Entries of one journal file; malformed lines (a torn write) are skipped."""
    return [e for e in map(_parse, _read_lines(path)) if e is not None]


def entries(folder: Path | None = None) -> Iterator[tuple[Path, Entry]]:
    """Every journaled entry with its file."""
    for path in files(folder):
        for entry in read(path):
            yield path, entry


def writer_alive(path: Path) -> bool:
    """Whether the process that writes ``path`` may still be running.

    Only this host's files can be checked (``kill(pid, 0)``); another host's file counts as
    alive, as does a name that does not parse.
    """
    host, _, pid_s = path.stem.removeprefix("journal-").rpartition("-")
    if host != socket.gethostname() or not pid_s.isdigit():
        return True
    if int(pid_s) == os.getpid():
        return True
    try:
        os.kill(int(pid_s), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replayable(folder: Path | None = None) -> list[Path]:
    """The files this process may replay: its own, then those of dead writers."""
    folder = folder or journal_dir()
    own = _own_file(folder)
    if folder.is_dir():  # lock files of dead writers whose journal is gone
        for lock in folder.glob("journal-*.lock"):
            if not lock.with_suffix(".jsonl").exists() and not writer_alive(lock):
                lock.unlink(missing_ok=True)
    return [p for p in files(folder) if p == own or not writer_alive(p)]


def replay(
    send: Callable[[Entry], None],
    *,
    folder: Path | None = None,
    tracking_uri: str | None = None,
    limit: int | None = None,
    only_replayable: bool = False,
) -> tuple[int, int]:
    """Send journaled entries (only those for ``tracking_uri`` when given).

    The file's lock is held only to read it and to remove what was sent, never while
    sending. After the first failure for a tracking URI the rest for it wait for next time.

    Args:
        send: sends one entry; raises when the server refuses or is unreachable.
        folder: journal folder (default: the settings).
        tracking_uri: restrict the replay to one tracking URI.
        limit: make at most this many sends, each one run's coalesced batch (None: all).
        only_replayable: only this process's file and files of dead writers.

    Returns:
        ``(sent, left)``: entries sent, and entries still in the journal for that scope.
    """
    sent = left = batches = 0
    failed_uris: set[str] = set()
    paths = replayable(folder) if only_replayable else files(folder)
    for path in paths:
        with plugin_state().journal_lock, _locked(path):
            lines = _read_lines(path)
        done: list[str] = []
        pending: list[tuple[str, Entry]] = []
        for raw in lines:
            entry = _parse(raw)
            if entry is None:
                done.append(raw)  # drop torn lines
            elif tracking_uri is None or entry.tracking_uri == tracking_uri:
                pending.append((raw, entry))
        for raws, entry in coalesce(pending):
            if entry.tracking_uri in failed_uris or (limit is not None and batches >= limit):
                left += len(raws)
                continue
            try:
                send(_for_replay(entry))
            except Exception:  # noqa: BLE001 - leave it for the next replay
                failed_uris.add(entry.tracking_uri)
                left += len(raws)
                continue
            batches += 1
            sent += len(raws)
            done.extend(raws)
        if done:
            _remove_lines(path, done)
    return sent, left


def coalesce(entries: list[tuple[str, Entry]]) -> list[tuple[list[str], Entry]]:
    """Merge the journaled batches of each run into as few ``log_batch`` calls as fit.

    A server that was down comes back to every process's backlog at once: one request per
    run instead of one per missed flush keeps the replay from overloading it. Metric rows
    keep their own timestamps and steps (the history is unchanged), later tags win, only the
    newest heartbeat row is kept, and an entry with a terminal status closes its run's batch
    (entries after it start a new one). Returns ``(raw lines, merged entry)`` in file order.
    """
    groups: list[tuple[list[str], Entry]] = []
    open_groups: dict[tuple[str, str], int] = {}
    for raw, entry in entries:
        key = (entry.tracking_uri, entry.run_id)
        i = open_groups.get(key)
        if i is not None and _fits(groups[i][1], entry):
            raws, merged = groups[i]
            if any(r and r[0] == M_HEARTBEAT_MS for r in entry.metrics):  # keep the newest only
                merged.metrics = [r for r in merged.metrics if not r or r[0] != M_HEARTBEAT_MS]
            merged.metrics.extend(entry.metrics)
            merged.tags.update(entry.tags)
            merged.created_ms = max(merged.created_ms, entry.created_ms)
            merged.status, merged.end_time_ms = entry.status, entry.end_time_ms
            raws.append(raw)
        else:
            groups.append(
                ([raw], replace(entry, metrics=list(entry.metrics), tags=dict(entry.tags)))
            )
            open_groups[key] = len(groups) - 1
        if entry.status:
            open_groups.pop(key, None)
    return groups


def _fits(merged: Entry, entry: Entry) -> bool:
    """Whether ``entry`` can join ``merged`` within MLflow's log_batch limits."""
    tags = len(merged.tags.keys() | entry.tags.keys())
    return tags <= MAX_BATCH_TAGS and len(merged.metrics) + len(entry.metrics) + tags <= (
        MAX_BATCH_ITEMS
    )


def _for_replay(entry: Entry) -> Entry:
    """The entry as a replay sends it: a fresh heartbeat, and no stale ``running`` status.

    ``carbon/heartbeat_ms`` is set to now (the replay is the flush that landed): the ETL finds
    changed runs by their heartbeat, so a final flush replayed hours after the run ended must
    look new to it, or the ledger would keep the run's earlier figures. A replayed periodic
    batch is late by definition: its ``carbon.status=running`` could overwrite the
    ``complete`` that the run's final flush already set, so it is dropped (a run still going
    sends ``running`` again with its next live flush).
    """
    now_ms = int(time.time() * MS_PER_S)
    metrics = [
        [M_HEARTBEAT_MS, float(now_ms), now_ms, row[3]] if row and row[0] == M_HEARTBEAT_MS else row
        for row in entry.metrics
    ]
    tags = {k: v for k, v in entry.tags.items() if (k, v) != (TAG_STATUS, STATUS_RUNNING)}
    return replace(entry, metrics=metrics, tags=tags)


def _remove_lines(path: Path, done: list[str]) -> None:
    """Remove ``done`` (as a multiset) from the file, keeping lines appended meanwhile."""
    with plugin_state().journal_lock, _locked(path):
        remove = Counter(done)
        keep = []
        for raw in _read_lines(path):
            if remove[raw] > 0:
                remove[raw] -= 1
            else:
                keep.append(raw)
        if not keep:
            path.unlink(missing_ok=True)
            if path != _own_file(path.parent):
                _lock_path(path).unlink(missing_ok=True)  # a dead writer's lock: nobody uses it
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        os.replace(tmp, path)
