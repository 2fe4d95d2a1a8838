"""Constants and helpers of the inference suites."""

from __future__ import annotations

from typing import Any

T0_S = 1_717_200_000.0  # 2024-06-01T00:00:00Z
POWER_W = {"gpu": 300.0, "cpu": 60.0}  # 360 W: 6 Wh per minute
INTENSITY = 380.0  # the ledger's DE 2024 test factor
PUE = 1.2


class Echo:
    """A trivial model: returns its input."""

    def predict(self, data: Any) -> Any:
        return data


def inference_runs(mlflow_uri: str) -> list[Any]:
    """Every inference run of the store, oldest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("carbonledger-inference")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
