"""Real training for the demo: small scikit-learn models (and a PyTorch one when installed).

Every run is started the ordinary way (``mlflow.sklearn.autolog`` and ``mlflow.start_run``):
the carbonledger plugin, loaded by MLflow's entry point, meters each run with no code here.
Datasets are the ones scikit-learn ships, so nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonledger.contract import TAG_MODEL_NAME, TAG_TEAM

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoModel:
    """One registered model a demo team trains, with the estimators it tries."""

    team: str
    experiment: str
    model_name: str
    dataset: str
    estimators: tuple[str, ...]


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("vision", "vision/digits", "digits-classifier", "digits", ("logreg", "forest")),
    DemoModel("risk", "risk/credit", "credit-scorer", "breast_cancer", ("boosting", "logreg")),
    DemoModel("forecasting", "forecasting/demand", "demand-regressor", "diabetes", ("ridge",)),
)


def dataset(name: str) -> tuple[Any, Any]:
    """Features and targets of a dataset scikit-learn ships (nothing is downloaded)."""
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    return loader(return_X_y=True)


def _estimator(kind: str, regression: bool) -> Any:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if regression:
        return {"ridge": Ridge(alpha=1.0), "forest": RandomForestRegressor(n_estimators=100)}[kind]
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "forest": RandomForestClassifier(n_estimators=200, random_state=0),
        "boosting": GradientBoostingClassifier(random_state=0),
    }[kind]


def use_experiment(name: str, team: str, artifacts: Path) -> str:
    """Make ``name`` the active experiment (created with its artifacts under ``artifacts``).

    The experiment carries the ``carbon.team`` tag, the ledger's team rule.
    """
    import mlflow

    client = mlflow.MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is None:
        location = (artifacts / name.replace("/", "-")).as_uri()
        experiment_id = client.create_experiment(name, artifact_location=location)
    else:
        experiment_id = existing.experiment_id
    client.set_experiment_tag(experiment_id, TAG_TEAM, team)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def train_all(artifacts: Path, models: tuple[DemoModel, ...] = DEMO_MODELS) -> list[str]:
    """Train and register every demo model; returns the MLflow run ids, in order.

    The caller sets the tracking URI. Each team's experiment carries the ``carbon.team`` tag
    (the ledger's team rule) and each run the ``carbon.model_name`` tag (lifecycle lineage).
    """
    import mlflow
    from sklearn.model_selection import train_test_split

    # Autolog logs params and metrics; the model is logged once, explicitly, to register it.
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    run_ids = []
    for spec in models:
        use_experiment(spec.experiment, spec.team, artifacts)
        x, y = dataset(spec.dataset)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
        regression = spec.dataset == "diabetes"
        for kind in spec.estimators:
            with mlflow.start_run(run_name=f"{spec.model_name}-{kind}") as run:
                mlflow.set_tag(TAG_MODEL_NAME, spec.model_name)
                estimator = _estimator(kind, regression)
                estimator.fit(x_train, y_train)
                score = float(estimator.score(x_test, y_test))
                mlflow.log_metric("test_r2" if regression else "test_accuracy", score)
                mlflow.sklearn.log_model(
                    estimator,
                    name="model",
                    registered_model_name=spec.model_name,
                    serialization_format="cloudpickle",  # our own file: no skops type review
                    input_example=x_test[:2],
                )
                run_ids.append(run.info.run_id)
                log.info("demo: trained %s (%s) score %.3f", spec.model_name, kind, score)
    mlflow.sklearn.autolog(disable=True)
    run_ids.extend(_train_torch(artifacts))
    return run_ids


def _train_torch(artifacts: Path) -> list[str]:
    """A small PyTorch MLP on the digits, when torch is installed (the ``torch`` extra)."""
    try:
        import torch
    except ImportError:
        return []
    import mlflow

    x, y = dataset("digits")
    features = torch.tensor(x, dtype=torch.float32) / 16.0
    labels = torch.tensor(y, dtype=torch.long)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    use_experiment("vision/digits", "vision", artifacts)
    with mlflow.start_run(run_name="digits-mlp-torch") as run:
        mlflow.set_tag(TAG_MODEL_NAME, "digits-mlp")
        for epoch in range(30):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(features), labels)
            loss.backward()
            optimiser.step()
            mlflow.log_metric("train_loss", loss.item(), step=epoch)
        accuracy = float((model(features).argmax(dim=1) == labels).float().mean())
        mlflow.log_metric("train_accuracy", accuracy)
    return [run.info.run_id]
