"""Build the shipped embodied-emissions tables from the source data (deterministic; run by hand).

Reads ``/work/shared/data/embodied/`` (or ``--source``) and writes compact CSV tables into
``carbonledger/embodied/data/``. Like ``build_intensity_tables.py``, the output depends only on
the input files (sorted rows, fixed number format), so a rebuild from unchanged data changes
no byte, and ``tests/embodied/test_shipped_data.py`` checks that byte for byte. Run it after the
source data changes and commit its output::

    .venv/bin/python scripts/build_embodied_tables.py [--source DIR] [--out DIR]

Tables written. Each source keeps its own file and licence (see ``ATTRIBUTION.md`` there):

- ``ccf_instances.csv`` (Apache-2.0, Cloud Carbon Footprint): provider, instance type, family,
  microarchitecture, CCF's additions and total (kg CO2e, whole host), and two columns derived
  here: ``host_gpu_count`` (CCF's GPU addition / its 150 kg per GPU card) and ``host_vcpus``
  (the largest vCPU count that the type names of the same family spell, e.g. ``p4d.24xlarge``
  -> 96; blank where no name in the family spells one).
- ``ccf_components.csv`` (Apache-2.0): CCF's component model (base server, per CPU, per GPU,
  SSD, HDD, DRAM per GB above a threshold, lifetime), read from its ``constants.py``.
- ``hubblo_gpu_cards.csv`` (CC BY-SA 4.0, ADEME/Hubblo): the climate-change impact (GWP, kg
  CO2e) of each GPU card by life-cycle phase: manufacturing (every component, upstream
  transport included), transport, end of life, and ``embodied_kg`` = manufacturing +
  transport. The ``Average`` row is left out: its component figures are per-unit factors of
  the calculator's parametric model (per cm2 of die, per GB of memory), not a card's total.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = Path("/work/shared/data/embodied")
DEFAULT_OUT = ROOT / "carbonledger" / "embodied" / "data"
PROVIDERS = ("aws", "azure", "gcp")

# constants.py name -> (parameter, unit, what it is)
COMPONENT_CONSTANTS = (
    ("BASE_MANUFACTURING_EMISSIONS", "base_server_kg", "kg CO2e", "mono-socket, low-DRAM rack "
     "server without local storage"),
    ("CPU_MANUFACTURING_EMISSIONS", "cpu_kg", "kg CO2e", "each CPU socket beyond the first"),
    ("GPU_MANUFACTURING_EMISSIONS", "gpu_kg", "kg CO2e", "each GPU card"),
    ("SSD_MANUFACTURING_EMISSIONS", "ssd_kg", "kg CO2e", "each SSD"),
    ("HDD_MANUFACTURING_EMISSIONS", "hdd_kg", "kg CO2e", "each HDD"),
    ("DRAM_THRESHOLD", "dram_threshold_gb", "GB", "DRAM included in the base server"),
    ("DRAM_PER_GB", "dram_kg_per_gb", "kg CO2e/GB", "DRAM above the threshold (533 kg per "
     "384 GB, Dell PowerEdge R740 LCA)"),
    ("RACK_SERVER_LIFESPAN", "lifetime_years", "years", "CCF's amortisation period (linear)"),
)  # fmt: skip


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _num(value: float) -> str:
    """Format a number without float noise: integers stay integers."""
    value = float(value)
    return str(int(value)) if value.is_integer() else format(value, ".10g")


def _evaluate(node: ast.AST, names: dict[str, float]) -> float:
    """A number from an arithmetic expression of numbers and earlier constants (no eval)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp):
        ops: dict[type[ast.operator], Callable[[float, float], float]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b,
        }
        op = ops.get(type(node.op))
        if op is not None:
            return op(_evaluate(node.left, names), _evaluate(node.right, names))
    raise SystemExit(f"unexpected expression in ccf-constants.py.txt: {ast.dump(node)}")


def ccf_constants(source: Path) -> dict[str, float]:
    """The numeric constants of CCF's ``constants.py`` (parsed, never executed)."""
    tree = ast.parse((source / "ccf-constants.py.txt").read_text(encoding="utf-8"))
    names: dict[str, float] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                names[target.id] = _evaluate(stmt.value, names)
    # DRAM_MANUFACTURING_EMISSIONS is (533 / 384) * DRAM_THRESHOLD: the per-GB rate is its ratio.
    names["DRAM_PER_GB"] = names["DRAM_MANUFACTURING_EMISSIONS"] / names["DRAM_THRESHOLD"]
    return names


def build_components(constants: dict[str, float]) -> str:
    """Return CCF's component model as parameter, value, unit, description."""
    rows = [
        [parameter, _num(constants[name]), unit, what]
        for name, parameter, unit, what in COMPONENT_CONSTANTS
    ]
    return _csv_text(["parameter", "value", "unit", "description"], rows)


_AWS_SIZE = re.compile(r"^(\d*)xlarge$")
_AZURE_SIZE = re.compile(r"^[A-Za-z]+(\d+)")
_GCP_SIZE = re.compile(r"-(\d+)$")


def spelled_vcpus(provider: str, instance_type: str) -> int | None:
    """The vCPUs an instance type's name spells (``m5.2xlarge`` -> 8), else None."""
    if provider == "aws":
        parts = instance_type.split(".")
        size = parts[-2] if parts[-1] == "elasticsearch" and len(parts) > 2 else parts[-1]
        if size == "medium":
            return 1
        if size == "large":
            return 2
        match = _AWS_SIZE.match(size)
        return 4 * int(match.group(1) or 1) if match else None
    pattern = _AZURE_SIZE if provider == "azure" else _GCP_SIZE
    found = pattern.search(instance_type)
    return int(found.group(1)) if found else None


def aws_family(instance_type: str) -> str:
    """An AWS type's family: ``p4d`` of ``p4d.24xlarge``, ``db.r5`` of ``db.r5.large``."""
    parts = instance_type.removesuffix(".elasticsearch").split(".")
    return ".".join(parts[:-1])


def build_instances(source: Path, gpu_kg: float) -> str:
    """Return the per-instance table of the three providers."""
    records: list[dict[str, str]] = []
    for provider in PROVIDERS:
        with (source / f"ccf-{provider}-embodied.csv").open(newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                kind = rec["type"].strip()
                family = rec.get("family", "").strip() or aws_family(kind)
                records.append({**rec, "provider": provider, "type": kind, "family": family})
    largest: dict[tuple[str, str], int] = {}
    for rec in records:
        vcpus = spelled_vcpus(rec["provider"], rec["type"])
        key = (rec["provider"], rec["family"])
        if vcpus is not None and vcpus > largest.get(key, 0):
            largest[key] = vcpus
    rows = []
    for rec in records:
        gpus = float(rec["additional_gpus"]) / gpu_kg
        if not gpus.is_integer():
            raise SystemExit(f"{rec['type']}: GPU addition is not a whole number of cards")
        host_vcpus = largest.get((rec["provider"], rec["family"]))
        rows.append(
            [
                rec["provider"],
                rec["type"],
                rec["family"],
                (rec.get("microarchitecture") or "").strip(),
                _num(float(rec["additional_memory"])),
                _num(float(rec["additional_storage"])),
                _num(float(rec["additional_cpus"])),
                _num(float(rec["additional_gpus"])),
                _num(float(rec["total"])),
                str(int(gpus)),
                str(host_vcpus) if host_vcpus else "",
            ]
        )
    rows.sort(key=lambda r: (r[0], r[1], r[3], r[2]))
    header = [
        "provider",
        "instance_type",
        "family",
        "microarchitecture",
        "additional_memory_kg",
        "additional_storage_kg",
        "additional_cpus_kg",
        "additional_gpus_kg",
        "total_kg",
        "host_gpu_count",
        "host_vcpus",
    ]
    return _csv_text(header, rows)


def _gwp(rec: dict[str, str], phase: str) -> float:
    text = (rec.get(f"{phase}_GWP") or "").strip()
    return float(text) if text else 0.0


def build_gpu_cards(source: Path) -> str:
    """Return each GPU card's GWP by phase, and manufacturing + transport as embodied."""
    with (source / "hubblo-gpu-impact-factors.csv").open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    phases: dict[str, dict[str, float]] = {}
    for rec in records:
        card = rec["graphics_card"].strip()
        if card == "Average":
            continue  # per-unit factors of the parametric model, not a card total
        totals = phases.setdefault(card, {"manufacturing": 0.0, "transport": 0.0, "eol": 0.0})
        totals["manufacturing"] += _gwp(rec, "manufacturing")
        totals["transport"] += _gwp(rec, "transport")
        totals["eol"] += _gwp(rec, "end_of_life")
    rows = []
    for card in sorted(phases):
        p = phases[card]
        embodied = p["manufacturing"] + p["transport"]
        rows.append(
            [card, _num(p["manufacturing"]), _num(p["transport"]), _num(p["eol"]), _num(embodied)]
        )
    header = ["graphics_card", "manufacturing_kg", "transport_kg", "end_of_life_kg", "embodied_kg"]
    return _csv_text(header, rows)


def build(source: Path, out: Path) -> dict[str, int]:
    """Write every table into ``out``; return their sizes in bytes."""
    constants = ccf_constants(source)
    tables = {
        "ccf_instances.csv": build_instances(source, constants["GPU_MANUFACTURING_EMISSIONS"]),
        "ccf_components.csv": build_components(constants),
        "hubblo_gpu_cards.csv": build_gpu_cards(source),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (out / name).write_text(text, encoding="utf-8")
    shutil.copyfile(source / "SOURCES.md", out / "SOURCES.md")
    return {name: len(text.encode()) for name, text in tables.items()}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for name, size in build(args.source, args.out).items():
        print(f"{name}: {size} bytes")  # noqa: T201


if __name__ == "__main__":
    main()
