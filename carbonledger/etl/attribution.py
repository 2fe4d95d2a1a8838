"""Nested runs counted once and charged to their ancestors' team and model.

MLflow nests runs (``mlflow.parentRunId``): sweeps, Optuna and Ray Tune trials, GridSearchCV
candidates. The plugin's figure of a parent includes its children (the plugin charges a nested
run what its root gets while it is active), so after every merge the ETL:

1. **re-attributes** every nested run the load touched, and every run below a run it touched
   (a parent that arrives in a later pass re-attributes children loaded before it): team and
   model come from the run's own tags, else from its nearest ancestor whose own tags name
   them, else from the run's experiment and the mapping rules (``etl.teams``);
2. **subtracts** the children from each parent the load touched: a parent's ``energy_kwh``,
   ``facility_energy_kwh`` and per-component ``run_energy.energy_kwh`` become exclusive
   (MLflow's figure minus its direct children's MLflow figures, never below zero), and MLflow's
   figure stays in ``inclusive_*``. Children count when they were measured the same way as the
   parent (both metered, or both estimated from their duration); then the parent's figure
   holds theirs.

Both steps run inside the load's transaction and touch only the trees of the staged runs, so a
pass without nested runs costs two small queries. Rows they change get a new ``loaded_at``,
which makes the rollups recompute their months.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from carbonledger import contract

PAGE = 5_000  # runs re-attributed per round trip (keeps memory flat in the number of runs)
MAX_DEPTH = 64  # nesting deeper than this is treated as a cycle and stops the walk
ANCESTOR = "ancestor:"
_TODO = "cl_attr_todo"
_PARENTS = "cl_attr_parents"


@dataclass(frozen=True, slots=True)
class AttributionCounts:
    """Runs whose team or model changed, and parents whose exclusive energy was recomputed."""

    reattributed: int = 0
    parents: int = 0


@dataclass(frozen=True, slots=True)
class _Node:
    pk: int
    run_id: str
    parent: str | None
    own_team: str | None
    own_model: str | None
    team_rule: str | None
    model_rule: str | None


def attribute(conn: Connection, source_id: int, staged: str) -> AttributionCounts:
    """Re-attribute nested runs and recompute parents' exclusive energy after a merge.

    Args:
        conn: the load's connection (inside its transaction).
        source_id: the tracking source being loaded.
        staged: a table, or a parenthesised subquery, of the ``run_id`` and
            ``parent_run_id`` of the runs this load inserted or changed.
    """
    sid = int(source_id)
    for name in (_TODO, _PARENTS):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} (run_id VARCHAR(64) PRIMARY KEY)")
    # Nested runs among the staged ones and every run below a staged one.
    conn.exec_driver_sql(
        f"WITH RECURSIVE below(run_id, depth) AS ("
        f" SELECT st.run_id, 0 FROM {staged} st"
        f" UNION SELECT r.run_id, b.depth + 1 FROM runs r JOIN below b"
        f" ON r.source_id = {sid} AND r.parent_run_id = b.run_id WHERE b.depth < {MAX_DEPTH})"
        f" INSERT INTO {_TODO} (run_id) SELECT DISTINCT b.run_id FROM below b"
        f" JOIN runs r ON r.source_id = {sid} AND r.run_id = b.run_id"
        f" WHERE r.parent_run_id IS NOT NULL"
    )
    reattributed = _reattribute(conn, sid)
    # Parents of staged runs, and staged runs that are parents.
    conn.exec_driver_sql(
        f"INSERT INTO {_PARENTS} (run_id) SELECT st.parent_run_id FROM {staged} st"
        f" WHERE st.parent_run_id IS NOT NULL"
        f" UNION SELECT s.run_id FROM {staged} s WHERE EXISTS (SELECT 1 FROM runs c"
        f" WHERE c.source_id = {sid} AND c.parent_run_id = s.run_id)"
    )
    parents = _exclusive(conn, sid)
    for name in (_TODO, _PARENTS):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    return AttributionCounts(reattributed, parents)


# -- team and model --------------------------------------------------------------------------


def _nodes(conn: Connection, sid: int, run_ids: Iterable[str]) -> dict[str, _Node]:
    ids = sorted(set(run_ids))
    out: dict[str, _Node] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join(f":r{j}" for j in range(len(chunk)))
        rows = conn.execute(
            text(
                "SELECT id, run_id, parent_run_id, own_team, own_model_name, team_rule, "
                f"model_rule FROM runs WHERE source_id = {sid} AND run_id IN ({marks})"
            ),
            {f"r{j}": v for j, v in enumerate(chunk)},
        )
        for row in rows:
            out[row[1]] = _Node(*row)
    return out


def _todo_pages(conn: Connection, sid: int) -> Iterator[list[tuple[Any, ...]]]:
    last = ""
    while True:
        page = conn.execute(
            text(
                "SELECT r.id, r.run_id, r.parent_run_id, r.team, r.team_rule, r.model_name, "
                "r.model_rule, r.own_team, r.own_model_name, r.fallback_team, "
                "r.fallback_team_rule, r.fallback_model_name "
                f"FROM {_TODO} t JOIN runs r ON r.source_id = {sid} AND r.run_id = t.run_id "
                "WHERE t.run_id > :last ORDER BY t.run_id LIMIT :n"
            ),
            {"last": last, "n": PAGE},
        ).all()
        if not page:
            return
        yield [tuple(r) for r in page]
        last = page[-1][1]


def _reattribute(conn: Connection, sid: int) -> int:
    changed = 0
    for page in _todo_pages(conn, sid):
        known: dict[str, _Node] = {}
        wanted = {r[2] for r in page if r[2]}
        for _ in range(MAX_DEPTH):  # fetch the ancestors of the page, one level a round
            wanted -= known.keys()
            if not wanted:
                break
            found = _nodes(conn, sid, wanted)
            known.update(found)
            wanted = {n.parent for n in found.values() if n.parent} - known.keys()
        updates = []
        for pk, run_id, parent, team, team_rule, model, model_rule, *rest in page:
            own_team, own_model, fb_team, fb_team_rule, fb_model = rest
            new = _effective(run_id, parent, own_team, own_model, known)
            new_team, new_team_rule = (
                (own_team, team_rule) if own_team else new[0] or (fb_team, fb_team_rule)
            )
            fallback_model = (fb_model, f"experiment:{contract.TAG_MODEL_NAME}")
            new_model, new_model_rule = (
                (own_model, model_rule)
                if own_model
                else new[1] or (fallback_model if fb_model else (None, None))
            )
            if (new_team, new_team_rule, new_model, new_model_rule) != (
                team,
                team_rule,
                model,
                model_rule,
            ):
                updates.append(
                    {
                        "pk": pk,
                        "team": new_team or contract.UNASSIGNED_TEAM,
                        "team_rule": new_team_rule,
                        "model": new_model,
                        "model_rule": new_model_rule,
                    }
                )
        if updates:
            conn.execute(
                text(
                    "UPDATE runs SET team = :team, team_rule = :team_rule, model_name = :model, "
                    "model_rule = :model_rule, loaded_at = CURRENT_TIMESTAMP WHERE id = :pk"
                ),
                updates,
            )
            changed += len(updates)
    return changed


def _effective(
    run_id: str,
    parent: str | None,
    own_team: str | None,
    own_model: str | None,
    known: dict[str, _Node],
) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """``(team, rule)`` and ``(model, rule)`` inherited from the nearest tagged ancestors."""
    team = None if own_team else _inherit(parent, known, "team")
    model = None if own_model else _inherit(parent, known, "model")
    return team, model


def _inherit(parent: str | None, known: dict[str, _Node], what: str) -> tuple[str, str] | None:
    seen: set[str] = set()
    while parent is not None and parent in known and parent not in seen:
        seen.add(parent)
        node = known[parent]
        value = node.own_team if what == "team" else node.own_model
        if value:
            rule = node.team_rule if what == "team" else node.model_rule
            own = rule if rule and rule.startswith("run:") else "run"
            return value, f"{ANCESTOR}{own}"
        parent = node.parent
    return None


# -- exclusive energy ------------------------------------------------------------------------


def _exclusive(conn: Connection, sid: int) -> int:
    """Parents' exclusive energy: MLflow's figure minus their direct children's, floor 0."""
    same = (
        "ch.source_id = p.source_id AND ch.parent_run_id = p.run_id "
        "AND ch.metering = p.metering AND ch.inclusive_energy_kwh IS NOT NULL"
    )
    runs = conn.execute(
        text(
            "SELECT p.id, p.inclusive_energy_kwh, p.inclusive_facility_energy_kwh, "
            "p.energy_kwh, p.facility_energy_kwh, "
            "(SELECT SUM(ch.inclusive_energy_kwh) FROM runs ch WHERE " + same + "), "
            "(SELECT SUM(ch.inclusive_facility_energy_kwh) FROM runs ch WHERE " + same + ") "
            f"FROM {_PARENTS} x JOIN runs p ON p.source_id = {sid} AND p.run_id = x.run_id "
            "WHERE p.inclusive_energy_kwh IS NOT NULL"
        )
    ).all()
    if not runs:
        return 0
    updates = []
    for pk, incl, incl_fac, energy, facility, child, child_fac in runs:
        new_energy = _minus(incl, child)
        new_facility = _minus(incl_fac, child_fac)
        if (new_energy, new_facility) != (energy, facility):
            updates.append({"pk": pk, "e": new_energy, "f": new_facility})
    if updates:
        conn.execute(
            text(
                "UPDATE runs SET energy_kwh = :e, facility_energy_kwh = :f, "
                "loaded_at = CURRENT_TIMESTAMP WHERE id = :pk"
            ),
            updates,
        )
    components = conn.execute(
        text(
            "SELECT e.run_pk, e.component, e.inclusive_energy_kwh, e.energy_kwh, e.is_estimate, "
            "(SELECT SUM(ce.inclusive_energy_kwh) FROM runs ch JOIN run_energy ce "
            "ON ce.run_pk = ch.id AND ce.component = e.component WHERE " + same + ") "
            f"FROM {_PARENTS} x JOIN runs p ON p.source_id = {sid} AND p.run_id = x.run_id "
            "JOIN run_energy e ON e.run_pk = p.id"
        )
    ).all()
    estimated: dict[int, float] = {}
    comp_updates = []
    for pk, component, incl, energy, is_estimate, child in components:
        new = _minus(incl, child)
        if new is None:
            continue
        if is_estimate:
            estimated[pk] = estimated.get(pk, 0.0) + new
        else:
            estimated.setdefault(pk, 0.0)
        if new != energy:
            comp_updates.append({"pk": pk, "c": component, "e": new})
    if comp_updates:
        conn.execute(
            text("UPDATE run_energy SET energy_kwh = :e WHERE run_pk = :pk AND component = :c"),
            comp_updates,
        )
    if estimated:
        conn.execute(
            text("UPDATE runs SET estimated_energy_kwh = :e WHERE id = :pk"),
            [{"pk": pk, "e": e} for pk, e in estimated.items()],
        )
    return len(runs)


def _minus(total: float | None, children: float | None) -> float | None:
    if total is None:
        return None
    return max(0.0, total - (children or 0.0))
