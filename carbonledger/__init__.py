"""carbonledger: know, report and cut the energy and carbon of ML models.

Packages:
    measure: device energy (NVML, RAPL, estimates) behind one ``Meter``.
    intensity: grid intensity and PUE from shipped tables (and an optional live provider).
    mlflow_plugin: the MLflow plugin that meters every run.
    ledger, etl: the SQL ledger and the job that loads MLflow runs into it.
    cli: the ``carbonledger`` command.
"""

import logging
from typing import TYPE_CHECKING

from carbonledger.errors import CarbonLedgerError

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.attach import Attachment

__version__ = "0.1.0"
__all__ = ["CarbonLedgerError", "__version__", "attach"]


def attach(run_id: str | None = None, *, tracking_uri: str | None = None) -> "Attachment":
    """Meter this process as part of an MLflow run another process owns (distributed ranks).

    Lazy: importing ``carbonledger`` does not import MLflow. See
    :func:`carbonledger.mlflow_plugin.attach.attach`.
    """
    from carbonledger.mlflow_plugin.attach import attach as _attach

    return _attach(run_id, tracking_uri=tracking_uri)


logging.getLogger(__name__).addHandler(logging.NullHandler())
