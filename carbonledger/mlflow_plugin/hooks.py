"""The run lifecycle hooks: ``MlflowClient.create_run``, ``set_terminated``, ``ActiveRun``.

MLflow has no run-end callback (mlflow#3202), so the plugin wraps the two client methods every
creation and every ending goes through (fluent runs, ``with`` blocks, MLflow's atexit,
autologging, Lightning's ``MLFlowLogger``), and ``ActiveRun.__init__``, the one place a fluent
run resumed with ``start_run(run_id=...)`` or ``MLFLOW_RUN_ID`` passes through. Each wrapper
calls MLflow first (creation) or last (ending: the final flush comes **before** the terminal
status) and runs its own code through :func:`~carbonledger.mlflow_plugin.safety.guarded`.

The entry point is loaded while ``mlflow`` is still importing, before ``MlflowClient`` exists;
:func:`install_when_ready` therefore patches at once if it can, else leaves a one-shot import
finder that patches at the first import after both classes exist (a few dict lookups).
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from carbonledger.contract import M_ENERGY_KWH, MLFLOW_PARENT_RUN_ID, MS_PER_S
from carbonledger.mlflow_plugin.safety import guarded
from carbonledger.mlflow_plugin.state import plugin_state

_lock = threading.Lock()
_created = threading.local()  # the run this thread just created (ActiveRun skips it)
_blocked = threading.local()  # a BudgetExceededError to re-raise to the create_run caller
# MLflow's methods the hooks replaced (the classes stay patched for the life of the process).
_originals: dict[str, Callable[..., Any]] = {}


def _enabled() -> bool:
    from carbonledger.settings import get_settings

    return not get_settings().disable


def _timed(fn: Callable[..., None], *args: Any) -> None:
    t0 = time.thread_time()
    try:
        fn(*args)
    finally:
        stats = plugin_state().hook_stats
        stats["hook_cpu_s"] += time.thread_time() - t0
        stats["hook_calls"] += 1


def _on_created(client: Any, run: Any, start_time: int | None, called_ms: int) -> None:
    if not _enabled():
        return
    from carbonledger.contract import UNMETERED_AFTER_THE_FACT
    from carbonledger.mlflow_plugin.registry import PAST_START_TOLERANCE_MS, registry

    uri = client._tracking_client.tracking_uri
    run_id = run.info.run_id
    if start_time is not None and start_time < called_ms - PAST_START_TOLERANCE_MS:
        registry().mark_unmetered(uri, run_id, UNMETERED_AFTER_THE_FACT)
        return
    tags = run.data.tags
    registry().begin(run_id, uri, parent_id=tags.get(MLFLOW_PARENT_RUN_ID), run_tags=tags)
    _preflight(run_id, uri, dict(run.data.tags))


def _preflight(run_id: str, uri: str, tags: dict[str, str]) -> None:
    from carbonledger.errors import BudgetExceededError
    from carbonledger.mlflow_plugin import registry

    for check in list(registry.PREFLIGHT):
        try:
            check(run_id, uri, tags)
        except BudgetExceededError as exc:
            _blocked.error = exc
            return
        except Exception as exc:  # noqa: BLE001
            from carbonledger.mlflow_plugin.safety import report_once

            report_once("budget pre-flight", exc)


def _on_active_run(run: Any) -> None:
    run_id = run.info.run_id
    if getattr(_created, "run_id", None) == run_id:
        return  # a fresh creation, handled by the create_run hook
    if not _enabled():
        return
    from carbonledger.mlflow_plugin.registry import registry, resumed_base

    if registry().get(run_id) is not None or run.info.status != "RUNNING":
        return
    import mlflow

    uri = mlflow.get_tracking_uri()
    base = resumed_base(run.data.metrics)
    base_step = 0
    if base:
        history = mlflow.MlflowClient(uri).get_metric_history(run_id, M_ENERGY_KWH)
        base_step = max((m.step for m in history), default=0)
    registry().begin(
        run_id,
        uri,
        parent_id=run.data.tags.get(MLFLOW_PARENT_RUN_ID),
        base=base,
        base_step=base_step,
        run_tags=run.data.tags,
    )


def _on_terminating(run_id: str) -> None:
    from carbonledger.mlflow_plugin.registry import registry

    registry().end(run_id)


def _arg(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _wrap_create_run(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def create_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        called_ms = int(time.time() * MS_PER_S)
        run = orig(self, *args, **kwargs)
        start_time = _arg(args, kwargs, 1, "start_time")
        _blocked.error = None
        _created.run_id = getattr(getattr(run, "info", None), "run_id", None)
        guarded("create_run hook", _timed, _on_created, self, run, start_time, called_ms)
        if _blocked.error is not None:
            error, _blocked.error = _blocked.error, None
            raise error
        return run

    create_run.__carbonledger__ = True  # type: ignore[attr-defined]
    return create_run


def _wrap_set_terminated(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def set_terminated(self: Any, *args: Any, **kwargs: Any) -> Any:
        run_id = _arg(args, kwargs, 0, "run_id")
        if getattr(_created, "run_id", None) == run_id:
            _created.run_id = None
        guarded("set_terminated hook", _timed, _on_terminating, run_id)
        return orig(self, *args, **kwargs)

    set_terminated.__carbonledger__ = True  # type: ignore[attr-defined]
    return set_terminated


def _wrap_active_run_init(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def __init__(self: Any, run: Any) -> None:  # noqa: N807 - the wrapped dunder
        orig(self, run)
        guarded("start_run (resume) hook", _timed, _on_active_run, run)

    __init__.__carbonledger__ = True  # type: ignore[attr-defined]
    return __init__


def _targets() -> list[tuple[str, Any, str, Callable[..., Any]]]:
    client_mod = sys.modules.get("mlflow.tracking.client")
    fluent_mod = sys.modules.get("mlflow.tracking.fluent")
    client_cls = getattr(client_mod, "MlflowClient", None)
    active_cls = getattr(fluent_mod, "ActiveRun", None)
    if client_cls is None or active_cls is None:
        return []
    return [
        ("create_run", client_cls, "create_run", _wrap_create_run),
        ("set_terminated", client_cls, "set_terminated", _wrap_set_terminated),
        ("active_run_init", active_cls, "__init__", _wrap_active_run_init),
    ]


def installed() -> bool:
    """Whether the hooks are in place."""
    return bool(_originals)


def try_install() -> bool:
    """Patch MLflow now if its classes exist; True when the hooks are (already) installed."""
    with _lock:
        if _originals:
            return True
        targets = _targets()
        if not targets:
            return False
        for key, owner, attr, wrapper in targets:
            orig = owner.__dict__[attr]
            if getattr(orig, "__carbonledger__", False):
                continue
            _originals[key] = orig
            setattr(owner, attr, wrapper(orig))
        return True


class _InstallWhenReady(importlib.abc.MetaPathFinder):
    """Finds nothing; patches MLflow at the first import after its classes exist."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if "mlflow.tracking.fluent" in sys.modules and _targets():
            _remove_finder()
            guarded("hook install", try_install)
        return None


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _InstallWhenReady)]


def install_when_ready() -> None:
    """Install the hooks now, or as soon as ``mlflow`` has defined the classes to patch."""
    if try_install():
        return
    if not any(isinstance(f, _InstallWhenReady) for f in sys.meta_path):
        sys.meta_path.insert(0, _InstallWhenReady())
