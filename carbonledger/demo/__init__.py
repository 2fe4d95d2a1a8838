"""``carbonledger demo``: the whole product on embedded defaults, end to end.

Modules:
    training: real scikit-learn (and, when installed, PyTorch) training with MLflow autolog,
        metered by the installed plugin, models registered per team.
    runner: the steps in order (train, ETL into a SQLite ledger, summary) and their work folder.
    summary: the closing tables, read back from the ledger.
"""

from carbonledger.demo.runner import DemoPaths, run_demo

__all__ = ["DemoPaths", "run_demo"]
