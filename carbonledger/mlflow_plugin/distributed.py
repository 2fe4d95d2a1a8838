"""Distributed runs: one elected meter per node, per-node metrics, totals summing the nodes.

Every process of a torchrun/DDP job (``RANK``/``LOCAL_RANK``/``WORLD_SIZE``) that tracks the
run tries to take an exclusive lock ``<tmp>/carbonledger-election/<run_id>-<node_id>.lock``;
the one that gets it is the node's **leader** and meters the node's devices, the others meter
nothing (no double counting). The node id is ``CARBONLEDGER_NODE_ID`` or the host name.

A leader logs ``carbon/node/<node_id>/*`` (with ``flush_seq``), then reads the run's latest
metrics and logs the run totals as the sum over every node seen, at step = sum of the nodes'
``flush_seq``: the view that includes the most recent node figures has the highest step, so
MLflow's latest value is the most complete sum whatever order the nodes finish in. Rank 0
computes the totals too even when it is not its node's leader.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carbonledger.mlflow_plugin import transport
from carbonledger.mlflow_plugin.journal import Entry

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.tracker import RunTracker

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class NodeRole:
    """This process's place in a distributed run."""

    node_id: str
    rank: int
    local_rank: int
    world_size: int
    leader: bool
    lock_fd: int | None = None
    lock_path: Path | None = None

    def release(self) -> None:
        """Give up the node's leadership and remove the lock file (best effort)."""
        if self.lock_fd is None:
            return
        if self.lock_path is not None:  # unlinked while still locked: no one can take it between
            try:
                self.lock_path.unlink(missing_ok=True)
            except OSError:
                pass
        os.close(self.lock_fd)
        self.lock_fd = None


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def node_id() -> str:
    """This node's id: ``CARBONLEDGER_NODE_ID``, else the host name (metric-key safe)."""
    from carbonledger.settings import get_settings

    raw = get_settings().node_id or socket.gethostname() or "node"
    return _SAFE.sub("_", raw)


def lock_dir() -> Path:
    """Folder of the per-node election locks (node-local temp dir)."""
    return Path(tempfile.gettempdir()) / "carbonledger-election"


def role_for(run_id: str, *, force: bool = False) -> NodeRole | None:
    """The node role for ``run_id``, or None for an ordinary single-process run."""
    world = _int_env("WORLD_SIZE", 1)
    if world <= 1 and not force:
        return None
    nid = node_id()
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}-{nid}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        leader = True
    except OSError:
        os.close(fd)
        fd, leader = -1, False
    return NodeRole(
        node_id=nid,
        rank=_int_env("RANK", 0),
        local_rank=_int_env("LOCAL_RANK", 0),
        world_size=world,
        leader=leader,
        lock_fd=fd if leader else None,
        lock_path=path if leader else None,
    )


def expected_nodes() -> int | None:
    """How many nodes the launcher says the job spans, when it says (None: unknown)."""
    world = _int_env("WORLD_SIZE", 1)
    local = _int_env("LOCAL_WORLD_SIZE", 0)
    if local > 0:
        return max(1, -(-world // local))
    nnodes = _int_env("SLURM_NNODES", 0) or _int_env("SLURM_JOB_NUM_NODES", 0)
    return nnodes or None


def _warn_missing_nodes(role: NodeRole, seen: int) -> None:
    """Warn once when a multi-process job ends having seen fewer nodes than it spans."""
    expected = expected_nodes()
    if role.world_size <= 1 or seen > 1 or expected == 1:
        return
    from carbonledger.mlflow_plugin.safety import warn_once

    warn_once(
        "distributed nodes",
        f"WORLD_SIZE={role.world_size} but only node {role.node_id!r} reported energy by the "
        f"final flush (launcher says {expected or 'unknown'} nodes): carbon.node_count=1 and "
        "the totals miss the other nodes unless their ranks attach (carbonledger.attach()); "
        "on a single node set LOCAL_WORLD_SIZE to silence this",
    )


def _node_values(tracker: RunTracker) -> dict[str, float]:
    from carbonledger.mlflow_plugin.tracker import (
        M_AVG_POWER,
        M_CO2E,
        M_DURATION,
        M_ENERGY,
        M_FACILITY,
        M_PEAK_POWER,
        derived_metrics,
    )

    d = derived_metrics(tracker.usage())
    return {
        "energy_kwh": d[M_ENERGY],
        "gpu_energy_kwh": d["carbon/gpu_energy_kwh"],
        "cpu_energy_kwh": d["carbon/cpu_energy_kwh"],
        "ram_energy_kwh": d["carbon/ram_energy_kwh"],
        "facility_energy_kwh": d[M_FACILITY],
        "co2e_kg": d[M_CO2E],
        "duration_s": d[M_DURATION],
        "avg_power_w": d[M_AVG_POWER],
        "peak_power_w": d[M_PEAK_POWER],
        "flush_seq": float(tracker.seq),
    }


def sum_nodes(latest: dict[str, float]) -> tuple[dict[str, float], int, int]:
    """Run totals from ``carbon/node/<id>/*`` values: (metrics, node count, step)."""
    from carbonledger.mlflow_plugin.factors import get_factors
    from carbonledger.mlflow_plugin.tracker import M_COMPONENT, NODE_PREFIX

    nodes: dict[str, dict[str, float]] = {}
    for key, value in latest.items():
        if key.startswith(NODE_PREFIX):
            nid, _, fieldname = key[len(NODE_PREFIX) :].rpartition("/")
            nodes.setdefault(nid, {})[fieldname] = value

    def total(name: str) -> float:
        return sum(n.get(name, 0.0) for n in nodes.values())

    energy, facility, co2e = total("energy_kwh"), total("facility_energy_kwh"), total("co2e_kg")
    duration = max((n.get("duration_s", 0.0) for n in nodes.values()), default=0.0)
    f = get_factors()
    out = {M_COMPONENT[c]: total(f"{c}_energy_kwh") for c in ("gpu", "cpu", "ram")}
    out.update(
        {
            "carbon/energy_kwh": energy,
            "carbon/facility_energy_kwh": facility,
            "carbon/co2e_kg": co2e,
            "carbon/pue": facility / energy if energy > 0 else f.pue.value,
            "carbon/intensity_g_per_kwh": (
                co2e * 1000.0 / facility if facility > 0 else f.grid.intensity_g_per_kwh
            ),
            "carbon/duration_s": duration,
            "carbon/avg_power_w": energy * 3_600_000.0 / duration if duration > 0 else 0.0,
            "carbon/peak_power_w": total("peak_power_w"),
        }
    )
    return out, len(nodes), int(total("flush_seq"))


def node_batch(tracker: RunTracker, *, ts: int, final: bool) -> Entry | None:
    """Log this node's figures (leader), then return the run-totals batch (leader or rank 0)."""
    from carbonledger.mlflow_plugin.flusher import deliver
    from carbonledger.mlflow_plugin.tracker import M_HEARTBEAT, NODE_PREFIX

    role: NodeRole = tracker.node
    if not role.leader and role.rank != 0:
        return None
    own: dict[str, float] = {}
    if role.leader:
        prefix = f"{NODE_PREFIX}{role.node_id}/"
        own = {prefix + k: v for k, v in _node_values(tracker).items()}
        rows: list[list[float | str | int]] = [[k, v, ts, tracker.seq] for k, v in own.items()]
        if not deliver(Entry(tracker.tracking_uri, tracker.run_id, rows, {}, ts)):
            return None
    try:
        latest = transport.latest_metrics(tracker.tracking_uri, tracker.run_id)
    except Exception:  # noqa: BLE001 - totals wait for the next flush
        return None
    latest.update(own)
    totals, count, step = sum_nodes(latest)
    if count == 0:
        return None
    if final and role.rank == 0:  # the owner ends last: the other nodes have reported by now
        _warn_missing_nodes(role, count)
    totals[M_HEARTBEAT] = float(ts)
    if role.leader:
        tags = tracker.tags(final=final)
    else:  # rank 0 without a meter: do not overwrite the leaders' hardware/method tags
        tags = {"carbon.status": "complete" if final else "running", "carbon.metered": "true"}
    tags["carbon.node_count"] = str(count)
    total_rows: list[list[float | str | int]] = [[k, v, ts, step] for k, v in totals.items()]
    return Entry(tracker.tracking_uri, tracker.run_id, total_rows, tags, ts)
