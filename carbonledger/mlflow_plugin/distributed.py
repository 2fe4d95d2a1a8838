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

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carbonledger import contract
from carbonledger.mlflow_plugin import transport
from carbonledger.mlflow_plugin.election import NodeLock, elect, node_id
from carbonledger.mlflow_plugin.journal import Entry

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.tracker import RunTracker

FIELD_OF_METRIC = {metric: name for name, metric in contract.NODE_FIELD_METRICS.items()}
FLUSH_SEQ = "flush_seq"


@dataclass
class NodeRole:
    """This process's place in a distributed run."""

    node_id: str
    rank: int
    local_rank: int
    world_size: int
    leader: bool
    lock: NodeLock | None = None

    def release(self) -> None:
        """Give up the node's leadership and remove the lock file (best effort)."""
        if self.lock is not None:
            self.lock.release()


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def role_for(run_id: str, *, force: bool = False) -> NodeRole | None:
    """The node role for ``run_id``, or None for an ordinary single-process run."""
    world = _int_env("WORLD_SIZE", 1)
    if world <= 1 and not force:
        return None
    nid = node_id()
    lock = elect(f"{run_id}-{nid}")
    return NodeRole(
        node_id=nid,
        rank=_int_env("RANK", 0),
        local_rank=_int_env("LOCAL_RANK", 0),
        world_size=world,
        leader=lock is not None,
        lock=lock,
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
    from carbonledger.mlflow_plugin.totals import derived_metrics

    totals = derived_metrics(tracker.usage())
    values = {name: totals[metric] for name, metric in contract.NODE_FIELD_METRICS.items()}
    values[FLUSH_SEQ] = float(tracker.seq)
    return values


def sum_nodes(latest: dict[str, float]) -> tuple[dict[str, float], int, int]:
    """Run totals from ``carbon/node/<id>/*`` values: (metrics, node count, step)."""
    from carbonledger.mlflow_plugin.factors import get_factors

    nodes: dict[str, dict[str, float]] = {}
    for key, value in latest.items():
        if key.startswith(contract.NODE_PREFIX):
            nid, _, fieldname = key[len(contract.NODE_PREFIX) :].rpartition("/")
            nodes.setdefault(nid, {})[fieldname] = value

    def total(field: str) -> float:
        return sum(n.get(field, 0.0) for n in nodes.values())

    def sum_of(metric: str) -> float:
        """The nodes' figures that add up to the run metric ``metric``."""
        return total(FIELD_OF_METRIC[metric])

    energy = sum_of(contract.M_ENERGY_KWH)
    facility = sum_of(contract.M_FACILITY_ENERGY_KWH)
    co2e = sum_of(contract.M_CO2E_KG)
    duration_field = FIELD_OF_METRIC[contract.M_DURATION_S]
    duration = max((n.get(duration_field, 0.0) for n in nodes.values()), default=0.0)
    f = get_factors()
    out = {metric: sum_of(metric) for metric in contract.M_COMPONENT_ENERGY_KWH.values()}
    out.update(
        {
            contract.M_ENERGY_KWH: energy,
            contract.M_FACILITY_ENERGY_KWH: facility,
            contract.M_CO2E_KG: co2e,
            contract.M_PUE: facility / energy if energy > 0 else f.pue.value,
            contract.M_INTENSITY_G_PER_KWH: (
                co2e * contract.G_PER_KG / facility if facility > 0 else f.grid.intensity_g_per_kwh
            ),
            contract.M_DURATION_S: duration,
            contract.M_AVG_POWER_W: contract.average_power_w(energy, duration),
            contract.M_PEAK_POWER_W: sum_of(contract.M_PEAK_POWER_W),
        }
    )
    return out, len(nodes), int(total(FLUSH_SEQ))


def node_batch(tracker: RunTracker, *, ts: int, final: bool) -> Entry | None:
    """Log this node's figures (leader), then return the run-totals batch (leader or rank 0)."""
    from carbonledger.mlflow_plugin.flusher import deliver
    from carbonledger.mlflow_plugin.tags import status_tags

    role: NodeRole = tracker.node
    if not role.leader and role.rank != 0:
        return None
    own: dict[str, float] = {}
    if role.leader:
        own = {contract.node_metric(role.node_id, k): v for k, v in _node_values(tracker).items()}
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
    totals[contract.M_HEARTBEAT_MS] = float(ts)
    if role.leader:
        tags = tracker.tags(final=final)
    else:  # rank 0 without a meter: do not overwrite the leaders' hardware/method tags
        tags = status_tags(final=final)
    tags[contract.TAG_NODE_COUNT] = str(count)
    total_rows: list[list[float | str | int]] = [[k, v, ts, step] for k, v in totals.items()]
    return Entry(tracker.tracking_uri, tracker.run_id, total_rows, tags, ts)
