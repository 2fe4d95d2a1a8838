"""Metering ``mlflow models serve``: serve a pyfunc wrapper that delegates to the real model.

MLflow's scoring server (``mlflow.pyfunc.scoring_server``, FastAPI under uvicorn) has no
middleware or plugin hook of its own: it loads the model at the URI it is given and calls its
``predict``. So the hook is the model itself: :func:`save_metered_model` writes a pyfunc model
whose ``PythonModel`` (:class:`MeteredPythonModel`) carries the inner model as an artifact and
the version to charge in its ``model_config``. ``mlflow models serve -m DIR`` then serves the
metered wrapper unchanged (same signature, same input formats)::

    carbonledger inference wrap models:/fraud-detector/3 --output ./fraud-metered
    mlflow models serve -m ./fraud-metered --env-manager local

Each serving worker process loads its own copy and meters itself; with ``--workers N`` one
worker per machine meters the devices (see ``meter``). ``CARBONLEDGER_DISABLE=1`` in the
server's environment serves the inner model unmetered, without redeploying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
from mlflow.pyfunc import PythonModel

from carbonledger.inference.runs import DEFAULT_EXPERIMENT

INNER_ARTIFACT = "inner_model"


class MeteredPythonModel(PythonModel):
    """Loads the inner model and meters its predictions (configured by ``model_config``)."""

    metered: Any = None

    def load_context(self, context: Any) -> None:
        """Load the inner model and register its version with the process's meter."""
        from carbonledger.inference.meter import inference_meter
        from carbonledger.inference.wrapper import MeteredModel
        from carbonledger.settings import get_settings

        config = dict(context.model_config or {})
        inner = mlflow.pyfunc.load_model(context.artifacts[INNER_ARTIFACT])
        if get_settings().disable:  # CARBONLEDGER_DISABLE=1: serve the inner model as is
            self.metered = inner
            return
        meter = inference_meter(
            window_s=float(config.get("window_s", 60.0)),
            tracking_uri=config.get("tracking_uri") or None,
            experiment=config.get("experiment") or DEFAULT_EXPERIMENT,
        )
        self.metered = MeteredModel(
            inner,
            model_name=config["model_name"],
            model_version=config["model_version"],
            team=config.get("team") or None,
            meter=meter,
        )

    def predict(self, context, model_input, params=None):
        """Predict with the inner model; the call is counted."""
        return self.metered.predict(model_input, params=params)


def _requirements(model_uri: str) -> list[str]:
    from carbonledger import __version__

    reqs: list[str] = []
    try:
        path = mlflow.pyfunc.get_model_dependencies(model_uri, format="pip")
        reqs = [
            line.strip()
            for line in Path(path).read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-"))
        ]
    except Exception:  # noqa: BLE001 - a model without requirements.txt: mlflow only
        reqs = ["mlflow"]
    return [r for r in reqs if not r.startswith("carbonledger")] + [f"carbonledger=={__version__}"]


def save_metered_model(
    path: str | Path,
    model_uri: str,
    *,
    model_name: str | None = None,
    model_version: int | None = None,
    window_s: float = 60.0,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    team: str | None = None,
) -> Path:
    """Write a pyfunc model at ``path`` that serves ``model_uri`` metered.

    Args:
        path: folder to create (must not exist).
        model_uri: the model to serve (``models:/NAME/VERSION``, ``runs:/...``, a path).
        model_name: registered model charged (default: from a ``models:/`` URI).
        model_version: its version (default: from a ``models:/`` URI).
        window_s: window length of the meter.
        experiment: experiment of the inference runs.
        tracking_uri: where the inference runs go (default: the serving process's
            ``MLFLOW_TRACKING_URI``).
        team: ``carbon.team`` of the inference runs.

    Raises:
        ConfigError: no model name/version given and none in the URI.
    """
    from carbonledger.inference.wrapper import resolve_model_version

    if model_name is None or model_version is None:
        model_name, model_version = resolve_model_version(model_uri)
    config = {
        "model_name": model_name,
        "model_version": int(model_version),
        "window_s": float(window_s),
        "experiment": experiment,
        "tracking_uri": tracking_uri or "",
        "team": team or "",
    }
    signature = mlflow.models.get_model_info(model_uri).signature
    mlflow.pyfunc.save_model(
        str(path),
        python_model=MeteredPythonModel(),
        artifacts={INNER_ARTIFACT: model_uri},
        model_config=config,
        signature=signature,
        pip_requirements=_requirements(model_uri),
    )
    return Path(path)
