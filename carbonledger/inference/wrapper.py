"""Metering a served model in Python: wrap it, call ``predict`` as before.

:class:`MeteredModel` wraps any object with ``predict`` (an MLflow ``PyFuncModel``, a
scikit-learn estimator...) and charges each call to a registered model version through the
process's :class:`~carbonledger.inference.meter.InferenceMeter`. The call path adds two clock
reads, ``len()`` of the input and one counter update under a lock; everything else (energy,
windows, MLflow) happens on the meter's thread::

    model = carbonledger.inference.metered("models:/fraud-detector/3")
    model.predict(df)                    # served and counted

For ``mlflow models serve`` see :mod:`carbonledger.inference.serving`.
"""

from __future__ import annotations

import re
from time import perf_counter
from typing import Any

from carbonledger.errors import ConfigError
from carbonledger.inference.meter import InferenceMeter, inference_meter

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")


def _rows(data: Any) -> int:
    """Rows in one request: ``len`` of a frame, array or list; 1 for a dict, string or scalar."""
    kind = type(data)
    if kind is dict or kind is str or kind is bytes:
        return 1
    try:
        return len(data)
    except TypeError:
        return 1


class MeteredModel:
    """A model whose ``predict`` calls are counted and charged to ``model_name`` v``version``.

    Args:
        model: the model to serve (anything with ``predict``).
        model_name: registered model charged.
        model_version: its version.
        team: ``carbon.team`` of the inference runs (default: the meter's or the setting).
        meter: the meter to use (default: the process-wide one).

    Other attributes are read from the wrapped model (``metadata``, ``unwrap_python_model``...).
    """

    def __init__(
        self,
        model: Any,
        *,
        model_name: str,
        model_version: int | str,
        team: str | None = None,
        meter: InferenceMeter | None = None,
    ) -> None:
        self.model = model
        self.meter = meter or inference_meter()
        self.counter = self.meter.register(model_name, model_version, team=team)
        self._predict = model.predict

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict with the wrapped model; the call is counted (failed calls as errors)."""
        start = perf_counter()
        try:
            out = self._predict(data) if params is None else self._predict(data, params=params)
        except BaseException:
            self.counter.record(perf_counter() - start, _rows(data), True)
            raise
        self.counter.record(perf_counter() - start, _rows(data))
        return out

    def close(self) -> None:
        """Stop charging this version (it is charged up to now)."""
        self.meter.unregister(self.counter)

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)


def resolve_model_version(model_uri: str) -> tuple[str, int]:
    """``(name, version)`` of a ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` URI.

    Raises:
        ConfigError: the URI names no registered model version; pass the name and version.
    """
    match = _MODELS_URI.match(model_uri)
    if match is None:
        raise ConfigError(
            f"{model_uri!r} is not a models:/NAME/VERSION or models:/NAME@ALIAS URI: give the "
            "registered model and version to charge (--model NAME --version N)"
        )
    name, version, alias = match["name"], match["version"], match["alias"]
    if alias is not None:
        from mlflow.tracking import MlflowClient

        return name, int(MlflowClient().get_model_version_by_alias(name, alias).version)
    if version is None or not version.isdigit():
        raise ConfigError(
            f"{model_uri!r}: use a version number or an alias (stages are deprecated in MLflow)"
        )
    return name, int(version)


def metered(
    model: Any,
    *,
    model_name: str | None = None,
    model_version: int | str | None = None,
    team: str | None = None,
    meter: InferenceMeter | None = None,
    **meter_kwargs: Any,
) -> MeteredModel:
    """Load (when given a URI) and wrap a model so its predictions are metered.

    Args:
        model: a model object, or an MLflow model URI (loaded with ``mlflow.pyfunc``).
        model_name: registered model charged (default: from a ``models:/`` URI).
        model_version: its version (default: from a ``models:/`` URI).
        team: ``carbon.team`` of the inference runs.
        meter: the meter to use (default: the process-wide one).
        **meter_kwargs: arguments of the process-wide meter when this call creates it
            (``window_s``, ``tracking_uri``, ``experiment``...; see ``InferenceMeter``).

    Raises:
        ConfigError: no model name and version, and none in the URI.
    """
    if model_name is None or model_version is None:
        if not isinstance(model, str):
            raise ConfigError("metered(model): pass model_name= and model_version=")
        model_name, model_version = resolve_model_version(model)
    if isinstance(model, str):
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model)
    meter = meter or inference_meter(**meter_kwargs)
    return MeteredModel(
        model, model_name=model_name, model_version=model_version, team=team, meter=meter
    )
