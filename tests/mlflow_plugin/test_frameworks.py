"""Real frameworks: sklearn autolog (with GridSearchCV child runs) and Lightning's MLFlowLogger."""

from __future__ import annotations

import time

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger.measure.base import J_PER_KWH
from carbonledger.mlflow_plugin import flusher

pytestmark = pytest.mark.slow


def test_sklearn_autolog_with_gridsearch_children(mlflow_uri: str, plugin: FakeMeter) -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    class SlowLogistic(LogisticRegression):
        def fit(self, X, y, sample_weight=None):  # type: ignore[no-untyped-def]
            time.sleep(0.1)  # a search that takes real time: children are logged afterwards
            return super().fit(X, y, sample_weight=sample_weight)

    X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    mlflow.sklearn.autolog(log_models=False, silent=True)
    try:
        search = GridSearchCV(SlowLogistic(max_iter=200), {"C": [0.1, 1.0, 10.0]}, cv=2)
        search.fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    # The children's "not metered" tags go out through the flusher thread, off the hot path.
    assert flusher.ensure_started().drain(60)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = read_run(mlflow_uri, parents[0].info.run_id)
    assert parent.info.status == "FINISHED"
    m = parent.data.metrics
    assert m["carbon/energy_kwh"] == pytest.approx(
        plugin.total_power_w * m["carbon/duration_s"] / J_PER_KWH, rel=1e-6
    )
    for child in children:
        # created after the fact with the parent's start time: not metered as if running now
        assert child.data.tags["carbon.metered"] == "false"
        assert not any(k.startswith("carbon/") for k in child.data.metrics)


def test_lightning_mlflow_logger_run_is_metered(mlflow_uri: str, plugin: FakeMeter) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.loggers import MLFlowLogger

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    logger = MLFlowLogger(experiment_name="lightning", tracking_uri=mlflow_uri)
    trainer = L.Trainer(
        max_epochs=2,
        log_every_n_steps=1,
        logger=logger,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Tiny(), loader)
    stored = read_run(mlflow_uri, logger.run_id)
    assert stored.info.status == "FINISHED"
    m = stored.data.metrics
    assert "loss" in m
    assert m["carbon/energy_kwh"] == pytest.approx(
        plugin.total_power_w * m["carbon/duration_s"] / J_PER_KWH, rel=1e-6
    )
    assert stored.data.tags["carbon.status"] == "complete"
