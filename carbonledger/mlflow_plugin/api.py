"""The plugin's public interface: what another in-process meter builds on.

The inference meter (:mod:`carbonledger.inference`) stands on these, and so does the training
plugin itself; nothing outside this package needs the plugin's other modules.

* **Tracking client**: :class:`TrackingClient` (create experiments and runs, log a batch,
  terminate a run, read metrics; no retries, ``CARBONLEDGER_FLUSH_TIMEOUT_S``),
  :func:`deadline` (one budget for several requests), :class:`Entry` (one batch) and its
  delivery: :func:`submit` (the flusher's queue), :func:`deliver` (now; journaled on failure).
* **Window accounting**: :class:`WindowReader` turns a meter window into per-component energy
  deltas (:class:`WindowDelta`) with the method of each component and the hardware tags.
* **Totals and tags**: :class:`Usage` and :func:`derived_metrics` (the ``carbon/*`` totals),
  :func:`metered_tags` / :func:`unmetered_tags` (the ``carbon.*`` tags), :func:`get_factors`
  (the process's grid intensity, PUE and location tags), :func:`plugin_version`.
* **Signals and election**: :func:`chain_signal` (run an action on SIGTERM, then the previous
  handler), :func:`elect` / :func:`node_id` (one leader per node for a set of devices).
* **Safety and state**: :func:`guarded`, :func:`report_once`, :func:`warn_once`;
  :func:`plugin_state` (the process state) and :func:`reset`.

The names imported here are the interface (hence no ``__all__`` of its own):
``carbonledger.mlflow_plugin.__all__`` lists them and re-exports them, loading this module on
first use only (it imports the settings: ~0.2 s) so that ``import mlflow`` stays cheap; a
test checks that the two agree.
"""

from __future__ import annotations

from carbonledger.mlflow_plugin.election import NodeLock, elect, node_id, safe_name  # noqa: F401
from carbonledger.mlflow_plugin.factors import Factors, get_factors  # noqa: F401
from carbonledger.mlflow_plugin.flusher import deliver, submit  # noqa: F401
from carbonledger.mlflow_plugin.journal import Entry  # noqa: F401
from carbonledger.mlflow_plugin.safety import guarded, report_once, warn_once  # noqa: F401
from carbonledger.mlflow_plugin.signals import SignalChain, chain_signal  # noqa: F401
from carbonledger.mlflow_plugin.state import PluginState, plugin_state, reset  # noqa: F401
from carbonledger.mlflow_plugin.tags import metered_tags, plugin_version, unmetered_tags  # noqa: F401
from carbonledger.mlflow_plugin.totals import Usage, derived_metrics  # noqa: F401
from carbonledger.mlflow_plugin.transport import TrackingClient, deadline, now_ms  # noqa: F401
from carbonledger.mlflow_plugin.windows import WindowDelta, WindowReader  # noqa: F401
