"""initial ledger schema

Revision ID: 47277dd025f0
Revises: 
Create Date: 2026-11-23 00:44:43.977599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '47277dd025f0'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('scope_name', sa.String(length=500), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('limit_co2e_kg', sa.Double(), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('thresholds_pct', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("scope IN ('model', 'team')", name=op.f('ck_budgets_scope')),
    sa.CheckConstraint('limit_co2e_kg > 0', name=op.f('ck_budgets_limit_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budgets')),
    sa.UniqueConstraint('scope', 'scope_name', 'period', name=op.f('uq_budgets_scope_scope_name_period'))
    )
    op.create_table('emission_factors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=8), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('intensity_g_per_kwh', sa.Double(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('licence', sa.String(length=200), nullable=True),
    sa.Column('instrument', sa.String(length=200), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("basis IN ('location', 'market')", name=op.f('ck_emission_factors_basis')),
    sa.CheckConstraint('intensity_g_per_kwh >= 0', name=op.f('ck_emission_factors_intensity_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emission_factors')),
    sa.UniqueConstraint('zone', 'year', 'basis', 'version', name=op.f('uq_emission_factors_zone_year_basis_version'))
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_teams_name'))
    )
    op.create_table('tracking_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uri', sa.String(length=1000), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_sources')),
    sa.UniqueConstraint('uri', name=op.f('uq_tracking_sources_uri'))
    )
    op.create_table('budget_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('threshold_pct', sa.Double(), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('co2e_kg', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], name=op.f('fk_budget_alerts_budget_id_budgets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_alerts')),
    sa.UniqueConstraint('budget_id', 'threshold_pct', 'period_start', name=op.f('uq_budget_alerts_budget_id_threshold_pct_period_start'))
    )
    op.create_table('etl_state',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('end_time_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_time_boundary_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('heartbeat_ms', sa.BigInteger(), nullable=True),
    sa.Column('heartbeat_boundary_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('models_updated_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_load_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_summary', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_etl_state_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source_id', name=op.f('pk_etl_state'))
    )
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_experiments_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('source_id', 'experiment_id', name=op.f('uq_experiments_source_id_experiment_id'))
    )
    op.create_table('inference_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=500), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activity_year', sa.Integer(), nullable=True),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('gpu_energy_kwh', sa.Double(), nullable=True),
    sa.Column('cpu_energy_kwh', sa.Double(), nullable=True),
    sa.Column('ram_energy_kwh', sa.Double(), nullable=True),
    sa.Column('energy_kwh', sa.Double(), nullable=False),
    sa.Column('pue', sa.Double(), nullable=True),
    sa.Column('facility_energy_kwh', sa.Double(), nullable=False),
    sa.Column('grid_zone', sa.String(length=64), nullable=True),
    sa.Column('plugin_intensity_g_per_kwh', sa.Double(), nullable=True),
    sa.Column('plugin_co2e_kg', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_inference_windows_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inference_windows')),
    sa.UniqueConstraint('source_id', 'run_id', 'window_start', name=op.f('uq_inference_windows_source_id_run_id_window_start'))
    )
    with op.batch_alter_table('inference_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inference_windows_model_name_window_start'), ['model_name', 'window_start'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_quarantine_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine')),
    sa.UniqueConstraint('source_id', 'record_id', name=op.f('uq_quarantine_source_id_record_id'))
    )
    op.create_table('registered_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_registered_models_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_models')),
    sa.UniqueConstraint('source_id', 'name', name=op.f('uq_registered_models_source_id_name'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('experiment_id', sa.String(length=64), nullable=True),
    sa.Column('run_name', sa.String(length=500), nullable=True),
    sa.Column('parent_run_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=True),
    sa.Column('is_stale', sa.Boolean(), nullable=False),
    sa.Column('stale_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activity_year', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.String(length=200), nullable=True),
    sa.Column('team', sa.String(length=200), nullable=False),
    sa.Column('team_rule', sa.String(length=64), nullable=True),
    sa.Column('model_name', sa.String(length=500), nullable=True),
    sa.Column('gpu_model', sa.String(length=200), nullable=True),
    sa.Column('gpu_count', sa.Integer(), nullable=True),
    sa.Column('cpu_model', sa.String(length=200), nullable=True),
    sa.Column('cpu_count', sa.Integer(), nullable=True),
    sa.Column('ram_gb', sa.Double(), nullable=True),
    sa.Column('node_count', sa.Integer(), nullable=True),
    sa.Column('attribution', sa.String(length=16), nullable=True),
    sa.Column('methods', sa.String(length=500), nullable=True),
    sa.Column('country', sa.String(length=8), nullable=True),
    sa.Column('cloud_provider', sa.String(length=16), nullable=True),
    sa.Column('cloud_region', sa.String(length=64), nullable=True),
    sa.Column('grid_zone', sa.String(length=64), nullable=True),
    sa.Column('metering', sa.String(length=16), nullable=False),
    sa.Column('energy_is_estimate', sa.Boolean(), nullable=False),
    sa.Column('duration_s', sa.Double(), nullable=True),
    sa.Column('energy_kwh', sa.Double(), nullable=True),
    sa.Column('pue', sa.Double(), nullable=True),
    sa.Column('facility_energy_kwh', sa.Double(), nullable=True),
    sa.Column('avg_power_w', sa.Double(), nullable=True),
    sa.Column('peak_power_w', sa.Double(), nullable=True),
    sa.Column('plugin_version', sa.String(length=32), nullable=True),
    sa.Column('plugin_intensity_g_per_kwh', sa.Double(), nullable=True),
    sa.Column('plugin_intensity_source', sa.String(length=200), nullable=True),
    sa.Column('plugin_co2e_kg', sa.Double(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("kind IN ('training', 'inference', 'estimate')", name=op.f('ck_runs_kind')),
    sa.CheckConstraint("metering IN ('metered', 'unmetered', 'imported')", name=op.f('ck_runs_metering')),
    sa.ForeignKeyConstraint(['source_id'], ['tracking_sources.id'], name=op.f('fk_runs_source_id_tracking_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('source_id', 'run_id', name=op.f('uq_runs_source_id_run_id'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_model_name'), ['model_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_source_id_parent_run_id'), ['source_id', 'parent_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_status_heartbeat_at'), ['status', 'heartbeat_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_team_start_time'), ['team', 'start_time'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registered_model_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('model_id', sa.String(length=64), nullable=True),
    sa.Column('lineage', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['registered_model_id'], ['registered_models.id'], name=op.f('fk_model_versions_registered_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('registered_model_id', 'version', name=op.f('uq_model_versions_registered_model_id_version'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_run_id'), ['run_id'], unique=False)

    op.create_table('run_energy',
    sa.Column('run_pk', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=16), nullable=False),
    sa.Column('energy_kwh', sa.Double(), nullable=False),
    sa.Column('method', sa.String(length=64), nullable=True),
    sa.Column('is_estimate', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['run_pk'], ['runs.id'], name=op.f('fk_run_energy_run_pk_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_pk', 'component', name=op.f('pk_run_energy'))
    )


def downgrade() -> None:
    op.drop_table('run_energy')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_run_id'))

    op.drop_table('model_versions')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_team_start_time'))
        batch_op.drop_index(batch_op.f('ix_runs_status_heartbeat_at'))
        batch_op.drop_index(batch_op.f('ix_runs_model_name'))
        batch_op.drop_index(batch_op.f('ix_runs_source_id_parent_run_id'))

    op.drop_table('runs')
    op.drop_table('registered_models')
    op.drop_table('quarantine')
    with op.batch_alter_table('inference_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inference_windows_model_name_window_start'))

    op.drop_table('inference_windows')
    op.drop_table('experiments')
    op.drop_table('etl_state')
    op.drop_table('budget_alerts')
    op.drop_table('tracking_sources')
    op.drop_table('teams')
    op.drop_table('emission_factors')
    op.drop_table('budgets')
