"""Experiments, teams and the model registry (lineage) of a source, upserted into the ledger.

Lineage: a registered model version links to the run that produced it through ``run_id``,
or, for MLflow 3 LoggedModels, through the LoggedModel's ``source_run_id``. Runs tagged
``carbon.model_name`` are linked on the ``runs`` row itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from carbonledger.etl.teams import TeamRules
from carbonledger.etl.transform import ExperimentInfo, ms_to_dt
from carbonledger.ledger.models import Experiment, ModelVersion, RegisteredModel, Run, Team

if TYPE_CHECKING:
    from carbonledger.etl.sources import Source


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def sync_experiments(
    conn: Connection,
    source_id: int,
    experiments: dict[str, ExperimentInfo],
    rules: TeamRules,
    *,
    runs_changed: bool = True,
) -> None:
    """Upsert every experiment and the teams known from runs and experiments.

    The runs' teams are read only when this load wrote runs (``runs_changed``): a pass that
    loaded or changed none cannot have charged a run to a new team, and the read is a scan of
    the source's runs.
    """
    if experiments:
        rows = []
        for exp in experiments.values():
            team, _ = rules.resolve(
                run_tags={}, experiment_tags=exp.tags, experiment_name=exp.name, user=None
            )
            rows.append(
                {
                    "source_id": source_id,
                    "experiment_id": exp.experiment_id,
                    "name": exp.name,
                    "team": team,
                    "tags": dict(exp.tags),
                }
            )
        stmt = _insert(conn, Experiment)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source_id", "experiment_id"],
            set_={
                "name": stmt.excluded.name,
                "team": stmt.excluded.team,
                "tags": stmt.excluded.tags,
            },
        )
        for start in range(0, len(rows), 1000):
            conn.execute(stmt, rows[start : start + 1000])
    teams: set[str] = set()
    if runs_changed:
        runs = select(Run.team).where(Run.source_id == source_id).distinct()
        teams = {r[0] for r in conn.execute(runs)}
    teams |= {r[0] for r in conn.execute(select(Experiment.team).distinct()) if r[0]}
    if teams:
        conn.execute(
            _insert(conn, Team).on_conflict_do_nothing(index_elements=["name"]),
            [{"name": t} for t in sorted(teams)],
        )


def sync_models(
    conn: Connection, source: Source, source_id: int, *, updated_since_ms: int | None
) -> tuple[int, int | None]:
    """Upsert registered models updated since the cursor and their versions.

    Returns:
        ``(models synced, new models cursor in epoch ms)``.
    """
    models = source.registered_models(updated_since_ms=updated_since_ms)
    if not models:
        return 0, updated_since_ms
    need_source = [v.model_id for m in models for v in m.versions if v.model_id and not v.run_id]
    logged = source.logged_model_source_runs(need_source) if need_source else {}
    stmt = _insert(conn, RegisteredModel)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source_id", "name"],
        set_={"updated_at": stmt.excluded.updated_at, "tags": stmt.excluded.tags},
    )
    conn.execute(
        stmt,
        [
            {
                "source_id": source_id,
                "name": m.name,
                "created_at": ms_to_dt(m.created_ms),
                "updated_at": ms_to_dt(m.updated_ms),
                "tags": m.tags,
            }
            for m in models
        ],
    )
    ids = dict(
        conn.execute(
            select(RegisteredModel.name, RegisteredModel.id).where(
                RegisteredModel.source_id == source_id,
                RegisteredModel.name.in_([m.name for m in models]),
            )
        ).all()
    )
    versions = []
    for m in models:
        for v in m.versions:
            run_id = v.run_id or logged.get(v.model_id or "")
            lineage = "run_id" if v.run_id else ("logged-model" if run_id else None)
            versions.append(
                {
                    "registered_model_id": ids[m.name],
                    "version": v.version,
                    "run_id": run_id,
                    "model_id": v.model_id,
                    "lineage": lineage,
                    "created_at": ms_to_dt(v.created_ms),
                }
            )
    if versions:
        vstmt = _insert(conn, ModelVersion)
        vstmt = vstmt.on_conflict_do_update(
            index_elements=["registered_model_id", "version"],
            set_={
                "run_id": vstmt.excluded.run_id,
                "model_id": vstmt.excluded.model_id,
                "lineage": vstmt.excluded.lineage,
            },
        )
        conn.execute(vstmt, versions)
    newest = max((m.updated_ms for m in models if m.updated_ms is not None), default=None)
    cursor = max(filter(None, [newest, updated_since_ms]), default=None)
    return len(models), cursor
