"""Inference runs on MLflow: the names of the window metrics, and run creation.

Each hosted version gets one MLflow run per UTC day and serving process (tag
``carbon.kind=inference``), so no run grows without bound; each window is one ``log_batch``
of ``carbon/inference/*`` metrics at ``step`` = the window's number in the run and
``timestamp`` = its start, plus the run's cumulative ``carbon/*`` totals and
``carbon/heartbeat_ms`` (how the ETL finds live runs). Runs are created and terminated
through the tracking store directly, not through ``MlflowClient`` (whose ``create_run`` the
training plugin meters), and over REST with no retries and ``CARBONLEDGER_FLUSH_TIMEOUT_S``
like every other plugin send: a server that is down costs one timeout, never minutes. A run
ends with a journal entry carrying ``status=FINISHED`` (sent, or journaled, in order with the
windows before it).
"""

from __future__ import annotations

import getpass
from typing import Any

from carbonledger.mlflow_plugin.transport import _rest_creds, _store, _timeout_s

P = "carbon/inference/"
# Per-window metrics (public names: docs/inference.md and docs/plugin.md list them).
W_REQUESTS = P + "requests"
W_ROWS = P + "rows"
W_ERRORS = P + "errors"
W_WINDOW_S = P + "window_s"
W_BUSY_S = P + "busy_s"
W_HOSTED_S = P + "hosted_s"
W_COMPONENT = {c: f"{P}{c}_energy_kwh" for c in ("gpu", "cpu", "ram")}
W_ENERGY = P + "energy_kwh"
W_ACTIVE = P + "active_energy_kwh"
W_IDLE = P + "idle_energy_kwh"
W_PUE = P + "pue"
W_FACILITY = P + "facility_energy_kwh"
W_INTENSITY = P + "intensity_g_per_kwh"
W_CO2E = P + "co2e_kg"
W_WH_PER_REQUEST = P + "wh_per_request"
W_ACTIVE_WH_PER_REQUEST = P + "active_wh_per_request"
W_G_PER_REQUEST = P + "co2e_g_per_request"
W_LATENCY = {50.0: P + "latency_p50_ms", 95.0: P + "latency_p95_ms", 99.0: P + "latency_p99_ms"}
W_IDLE_POWER = P + "idle_power_w"
# Run totals besides the carbon/* totals of every metered run.
T_REQUESTS = P + "requests_total"
T_ROWS = P + "rows_total"
T_WINDOWS = P + "windows_total"
WINDOW_METRICS = (
    W_REQUESTS,
    W_ROWS,
    W_ERRORS,
    W_WINDOW_S,
    W_BUSY_S,
    W_HOSTED_S,
    *W_COMPONENT.values(),
    W_ENERGY,
    W_ACTIVE,
    W_IDLE,
    W_PUE,
    W_FACILITY,
    W_INTENSITY,
    W_CO2E,
    W_WH_PER_REQUEST,
    W_ACTIVE_WH_PER_REQUEST,
    W_G_PER_REQUEST,
    *W_LATENCY.values(),
    W_IDLE_POWER,
)
DEFAULT_EXPERIMENT = "carbonledger-inference"

_EXPERIMENT_BY_NAME = "/api/2.0/mlflow/experiments/get-by-name"
_EXPERIMENT_CREATE = "/api/2.0/mlflow/experiments/create"
_RUN_CREATE = "/api/2.0/mlflow/runs/create"


def _rest(creds: Any, endpoint: str, method: str, **kwargs: Any) -> Any:
    from mlflow.utils.rest_utils import http_request

    return http_request(creds, endpoint, method, max_retries=0, timeout=_timeout_s(), **kwargs)


def experiment_id(tracking_uri: str, name: str) -> str:
    """Id of the experiment ``name``, created when missing; raises on any failure."""
    store = _store(tracking_uri)
    creds = _rest_creds(store)
    if creds is None:
        found = store.get_experiment_by_name(name)
        return str(found.experiment_id if found is not None else store.create_experiment(name))
    from mlflow.utils.rest_utils import verify_rest_response

    response = _rest(creds, _EXPERIMENT_BY_NAME, "GET", params={"experiment_name": name})
    if response.status_code == 200:
        return str(response.json()["experiment"]["experiment_id"])
    response = _rest(creds, _EXPERIMENT_CREATE, "POST", json={"name": name})
    verify_rest_response(response, _EXPERIMENT_CREATE)
    return str(response.json()["experiment_id"])


def create_run(
    tracking_uri: str, *, experiment: str, run_name: str, start_ms: int, tags: dict[str, str]
) -> str:
    """Create a RUNNING run and return its id; raises on any failure."""
    exp_id = experiment_id(tracking_uri, experiment)
    store = _store(tracking_uri)
    creds = _rest_creds(store)
    user = _user()
    if creds is None:
        from mlflow.entities import RunTag

        run = store.create_run(
            experiment_id=exp_id,
            user_id=user,
            start_time=start_ms,
            tags=[RunTag(k, v) for k, v in tags.items()],
            run_name=run_name,
        )
        return str(run.info.run_id)
    from mlflow.utils.rest_utils import verify_rest_response

    body = {
        "experiment_id": exp_id,
        "user_id": user,
        "start_time": start_ms,
        "run_name": run_name,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    response = _rest(creds, _RUN_CREATE, "POST", json=body)
    verify_rest_response(response, _RUN_CREATE)
    return str(response.json()["run"]["info"]["run_id"])


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"
