"""The ETL: MLflow tracking servers -> the ledger, incrementally and idempotently.

Modules: ``extract`` (MLflow client reads with cursor filters), ``transform`` (validation,
quarantine reasons, unmetered estimates), ``teams`` (team rules), ``registry`` (experiments,
registered models, lineage), ``load`` (staging, COPY on PostgreSQL, upsert, stale runs),
``state`` (cursor and load lock), ``pipeline`` (one pass), ``codecarbon`` (CSV import).
"""

from carbonledger.etl.pipeline import SourceSummary, run_etl

__all__ = ["SourceSummary", "run_etl"]
