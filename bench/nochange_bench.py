"""No-change ETL pass as a CLI process: wall time, interleaved against an older tree.

Each round runs ``carbonledger etl -q`` once per tree (the installed console script, with
``PYTHONPATH`` set to the tree), on a ledger that already holds the store, and reads the
wall time; the medians and their ratio are printed. Run it on a quiet machine: the target
(issue 15) is an absolute < 1.5 s.

    # an older tree, with its .pyc (what an installed wheel has)
    git archive <commit> carbonledger migrations alembic.ini | tar -x -C /tmp/before
    python -m compileall -q /tmp/before/carbonledger carbonledger
    python bench/nochange_bench.py --store postgresql+psycopg://.../cl_nc_mlflow_20k \
        --ledger-url '<ledger at head>' --before /tmp/before --before-ledger-url '<ledger at
        the older head>' --rounds 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one_pass(cli: str, store: str, ledger_url: str, tree: str) -> float:
    env = {**os.environ, "PYTHONPATH": tree}
    started = time.perf_counter()
    out = subprocess.run(
        [cli, "etl", "-q", "--mlflow-uri", store, "--ledger-url", ledger_url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0 or "loaded 0, updated 0" not in out.stdout:
        sys.exit(f"not a no-change pass ({out.returncode}): {out.stdout}{out.stderr}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="tracking URI (a store already loaded)")
    p.add_argument("--ledger-url", required=True, help="ledger at this tree's head")
    p.add_argument("--before", help="an older tree (its carbonledger/ and migrations/)")
    p.add_argument("--before-ledger-url", help="a ledger at the older tree's head")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    cli = shutil.which("carbonledger", path=str(Path(sys.executable).parent)) or "carbonledger"
    trees = {"after": (str(Path(__file__).resolve().parents[1]), args.ledger_url)}
    if args.before:
        trees = {"before": (args.before, args.before_ledger_url or args.ledger_url), **trees}
    walls: dict[str, list[float]] = {name: [] for name in trees}
    for tree, url in trees.values():  # one warm-up pass each (page cache, .pyc)
        one_pass(cli, args.store, url, tree)
    for _ in range(args.rounds):
        for name, (tree, url) in trees.items():
            walls[name].append(one_pass(cli, args.store, url, tree))
    for name, values in walls.items():
        spread = sorted(round(v, 2) for v in values)
        print(f"{name}: median {statistics.median(values):.2f} s  {spread}")
    if "before" in walls:
        ratio = statistics.median(walls["after"]) / statistics.median(walls["before"])
        print(f"after / before: {ratio:.2f}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
