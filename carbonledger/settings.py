"""The one settings object of carbonledger (environment prefix ``CARBONLEDGER_``).

Read it through :func:`get_settings`, which caches one instance; tests set the environment
first and call ``get_settings.cache_clear()``. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from carbonledger.contract import DEFAULT_EMBODIED_LIFETIME_YEARS
from carbonledger.errors import ConfigError


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "carbonledger"


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "carbonledger"


class Settings(BaseSettings):
    """Every setting of carbonledger; each field is ``CARBONLEDGER_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CARBONLEDGER_", extra="ignore", validate_default=True
    )

    # --- plugin -----------------------------------------------------------------------------
    disable: bool = Field(False, description="Turn the MLflow plugin off entirely.")
    flush_s: float = Field(30.0, gt=0, description="Seconds between cumulative metric flushes.")
    flush_timeout_s: float = Field(
        5.0, gt=0, description="Longest a flush may wait on the tracking server before journaling."
    )
    attribution: Literal["device", "process"] = Field(
        "device", description="Charge whole devices (device) or the process tree's share (process)."
    )
    journal_path: Path = Field(
        default_factory=lambda: _cache_home() / "journal",
        description="Folder of the JSONL journal for metrics the tracking server did not take.",
    )
    node_id: str | None = Field(
        None, description="Node name in distributed runs (default: the host name)."
    )
    team: str | None = Field(None, description="Team tag (carbon.team) set on every run.")
    model_name: str | None = Field(
        None, description="Registered model a run works toward (carbon.model_name tag)."
    )
    budget_policy: Literal["warn", "block"] = Field(
        "warn", description="What a run tagged with an over-budget model does: warn or block."
    )

    # --- measurement ------------------------------------------------------------------------
    cpu_method: Literal["auto", "rapl", "estimate"] = Field(
        "auto", description="CPU energy method: RAPL counters, TDP estimate, or auto (RAPL first)."
    )
    gpu_method: Literal["auto", "counter", "power"] = Field(
        "auto", description="GPU method: NVML energy counter, power integration, or auto."
    )
    rapl_root: Path = Field(Path("/sys/class/powercap"), description="Root of the powercap tree.")
    cpu_tdp_w: float | None = Field(None, gt=0, description="Override the CPU's rated power (W).")
    estimate_interval_s: float = Field(
        5.0, gt=0, description="Sampling period of utilisation-based estimates (peak power, s)."
    )
    power_sample_hz: float = Field(
        10.0, ge=10.0, description="GPU power sampling rate when integrating power (Hz)."
    )
    dmi_root: Path = Field(
        Path("/sys/class/dmi/id"),
        description="Folder of the DMI files read once per process (product_name, sys_vendor).",
    )
    instance_type: str | None = Field(
        None,
        description="Cloud instance type of this machine, e.g. p4d.24xlarge (default: DMI "
        "product_name where it names one, as on AWS).",
    )
    gpu_share_dir: Path | None = Field(
        None,
        description="Folder where metering processes announce the GPUs they meter, so a shared "
        "GPU is split, not charged twice (default: <tmp>/carbonledger-gpu-share).",
    )

    # --- location, intensity and PUE --------------------------------------------------------
    intensity_g_per_kwh: float | None = Field(
        None, ge=0, description="Explicit grid intensity (gCO2e/kWh); wins over everything."
    )
    grid_zone: str | None = Field(
        None, description="Electricity Maps zone, e.g. DE or US-CAL-CISO."
    )
    cloud_provider: Literal["aws", "gcp", "azure"] | None = Field(None, description="Cloud.")
    cloud_region: str | None = Field(None, description="Cloud region, e.g. eu-west-1.")
    country: str | None = Field(None, description="ISO 3166 alpha-2 or alpha-3 country code.")
    pue: float | None = Field(None, ge=1.0, description="Explicit PUE of the data centre.")
    intensity_year: int | None = Field(
        None, description="Year of the yearly intensity tables to use (default: latest shipped)."
    )
    live_intensity: bool = Field(False, description="Ask the live provider (Electricity Maps).")
    electricitymaps_token: SecretStr | None = Field(None, description="Electricity Maps API token.")
    electricitymaps_url: str = Field(
        "https://api.electricitymap.org/v3", description="Electricity Maps API base URL."
    )
    live_timeout_s: float = Field(2.0, gt=0, description="Timeout of a live intensity request.")
    live_cache_ttl_s: float = Field(3600.0, ge=0, description="Cache lifetime of live answers.")

    # --- embodied emissions ------------------------------------------------------------------
    embodied_path: Path | None = Field(
        None,
        description="YAML file of the organisation's embodied figures per instance type or "
        "hardware model; they win over the shipped ones.",
    )
    embodied_lifetime_years: float = Field(
        DEFAULT_EMBODIED_LIFETIME_YEARS,
        gt=0,
        description="Years over which hardware's embodied emissions are amortised.",
    )

    # --- ledger and ETL ---------------------------------------------------------------------
    ledger_url: SecretStr = Field(
        default_factory=lambda: SecretStr(f"sqlite:///{_data_home() / 'ledger.db'}"),
        description="SQLAlchemy URL of the ledger (PostgreSQL in production).",
    )
    read_database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL the app, `carbonledger report` and `carbonledger advise` "
        "read, opened read-only: e.g. a PostgreSQL streaming replica (default: "
        "CARBONLEDGER_LEDGER_URL). The ETL, migrations and budgets always use the ledger URL.",
    )
    mlflow_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Tracking URIs the ETL reads, comma-separated (default: MLFLOW_TRACKING_URI).",
    )
    team_rules_path: Path | None = Field(
        None, description="YAML mapping rules: experiment -> team."
    )
    budgets_path: Path | None = Field(None, description="budgets.yaml synced by the ETL.")
    etl_lookback_s: float = Field(
        60.0,
        ge=0,
        description="Incremental ETL re-reads runs ending this long before its cursor (s).",
    )
    etl_read: Literal["auto", "client", "store"] = Field(
        "auto",
        description="How the ETL reads a database tracking URI (sqlite/postgresql/mysql): "
        "auto (SQL on MLflow's tables when the schema revision is a tested one, else the "
        "MLflow client), client, or store (SQL only; fail instead of falling back).",
    )
    etl_hourly: bool = Field(
        True,
        description="Spread each run's and window's energy over its UTC hours (hourly factors).",
    )
    etl_hourly_history: bool = Field(
        True,
        description="Spread a run's energy over its hours by its cumulative energy history.",
    )
    stale_after_s: float = Field(
        3600.0, gt=0, description="A RUNNING run whose heartbeat is older than this is stale."
    )
    unmetered_power_w: float | None = Field(
        None, gt=0, description="Configured hardware power used to estimate unmetered runs (W)."
    )
    webhook_url: SecretStr | None = Field(None, description="Budget alert webhook (POST JSON).")
    history_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "val_loss", "val*loss", "valid*loss", "eval*loss", "test*loss",
            "val*acc*", "eval*acc*", "test*acc*", "accuracy",
        ],
        description="Objective metrics (fnmatch patterns) whose histories the ETL keeps.",
    )  # fmt: skip
    history_max_points: int = Field(
        500, ge=10, description="Points kept per metric history (longer ones are downsampled)."
    )
    advise_idle_share: float = Field(
        0.5, ge=0, le=1, description="Idle energy share above which a served version is idle."
    )
    advise_quiet_hour_share: float = Field(
        0.01, ge=0, le=1, description="Share of requests below which an hour of day is quiet."
    )
    advise_patience_steps: int = Field(
        2, ge=1, description="Steps after the best objective before a run counts as past best."
    )
    advise_sweep_min_children: int = Field(
        6, ge=2, description="Children a parent run needs to be treated as a sweep."
    )
    advise_metric_margin: float = Field(
        0.01, ge=0, description="Relative margin within which a cheaper version is as good."
    )
    mlflow_ui_urls: dict[str, str] = Field(
        default_factory=dict,
        description="MLflow UI base URL per tracking source URI (JSON; default: the URI).",
    )
    demo_no_app: bool = Field(
        False, description="`carbonledger demo` stops before starting the app (tests, CI)."
    )

    def read_url(self) -> str:
        """The URL the read-only surfaces open: the read URL, else the ledger URL (a secret)."""
        chosen = self.read_database_url or self.ledger_url
        return chosen.get_secret_value()

    @field_validator("mlflow_uris", "history_keys", mode="before")
    @classmethod
    def _split_uris(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "node_id",
        "team",
        "model_name",
        "grid_zone",
        "cloud_region",
        "country",
        "electricitymaps_token",
        "team_rules_path",
        "budgets_path",
        "webhook_url",
        "read_database_url",
        "gpu_share_dir",
        "instance_type",
        "embodied_path",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable (a blank line in an env file, `VAR=` in compose) means unset,
        # not the current folder or an empty secret.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cloud_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) and value.strip() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment.

    Raises:
        ConfigError: a ``CARBONLEDGER_*`` variable has an invalid value; the message names it.
    """
    try:
        return Settings()
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ConfigError(_explain(exc)) from None


def _explain(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"invalid carbonledger setting: {exc}"
    parts = []
    for err in errors():
        loc = "_".join(str(p) for p in err.get("loc", ())).upper()
        # Never echo the input: it may be a secret.
        parts.append(f"CARBONLEDGER_{loc}: {err.get('msg', 'invalid value')}")
    return "invalid carbonledger settings: " + "; ".join(parts) + " (fix or unset the variable)"
