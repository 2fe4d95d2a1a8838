"""Node election: of the processes that meter the same devices, one holds an exclusive lock.

A process that wants to meter a node's devices calls :func:`elect` with a name that says
what is metered (a distributed run on this node, the inference of a set of visible GPUs); it
tries a non-blocking exclusive ``flock`` on ``<tmp>/carbonledger-election/<name>.lock`` and
is the **leader** when it gets it. The lock is node-local (the temp folder) and lasts until
:meth:`NodeLock.release` or the process's end (the OS drops a dead process's locks), so a
crashed leader never blocks the next one. Used by distributed training runs
(:mod:`carbonledger.mlflow_plugin.distributed`) and by the inference meter.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from carbonledger.mlflow_plugin.state import plugin_state

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_ATTEMPTS = 3  # a leader that releases between our open and our lock makes us try again


def safe_name(raw: str) -> str:
    """``raw`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    return _SAFE.sub("_", raw)


def node_id() -> str:
    """This node's id: ``CARBONLEDGER_NODE_ID``, else the host name (metric-key safe)."""
    from carbonledger.settings import get_settings

    return safe_name(get_settings().node_id or socket.gethostname() or "node")


def lock_dir() -> Path:
    """Folder of the election locks (node-local temp dir)."""
    return Path(tempfile.gettempdir()) / "carbonledger-election"


@dataclass(eq=False)
class NodeLock:
    """An election won: the lock file and the descriptor that holds its ``flock``.

    Attributes:
        path: the lock file.
        fd: the descriptor holding the lock (None once released).
        held_in: the process state's set of held locks, which this one leaves on release.
    """

    path: Path
    fd: int | None
    held_in: set[NodeLock] = field(default_factory=set, repr=False)

    def release(self) -> None:
        """Give up the leadership and remove the lock file (idempotent, best effort)."""
        if self.fd is None:
            return
        try:  # unlinked while still locked; a process that opened it before re-checks
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        self.forget()

    def forget(self) -> None:
        """Close this process's descriptor only (a forked child; the parent keeps the lock)."""
        fd, self.fd = self.fd, None
        self.held_in.discard(self)
        if fd is not None:
            os.close(fd)


def elect(name: str) -> NodeLock | None:
    """Try to become the leader for ``name`` on this node; the lock when this process won.

    Never waits: ``None`` means another live process holds the lock.

    Raises:
        OSError: the lock folder or file cannot be created.
    """
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(name)}.lock"
    for _ in range(_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if _same_file(fd, path):
            held = plugin_state().node_locks
            lock = NodeLock(path, fd, held)
            held.add(lock)
            return lock
        os.close(fd)  # we locked a file its leader had just released and removed
    return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        held, named = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
