"""The organisation's own embodied figures (``CARBONLEDGER_EMBODIED_PATH``): strict YAML.

A figure per cloud instance type, per machine model or per GPU model (a vendor's product
carbon footprint, an LCA the organisation commissioned) wins over the shipped tables::

    version: 1
    embodied:
      - instance_type: p4d.24xlarge          # a whole host: give its resources
        provider: aws                        # optional: any provider when left out
        embodied_co2e_kg: 5200
        host_gpu_count: 8
        host_vcpus: 96
        source: "Vendor PCF 2025, cradle to gate"
      - host_model: PowerEdge XE9680         # DMI product_name (carbon.host_model)
        embodied_co2e_kg: 8900
        host_gpu_count: 8
        source: "Dell PCF XE9680"
        relative_uncertainty: 0.2            # optional, default 0.15 (a product LCA)
      - gpu_model: NVIDIA H100 80GB HBM3     # one card, used where a host is built from parts
        embodied_co2e_kg: 164
        source: "NVIDIA HGX H100 PCF summary, 1,312 kg / 8 GPUs"

Every entry gets a stable ``key`` (``instance:aws:p4d.24xlarge``, ``host:poweredge xe9680``,
``gpu:h100 sxm 80gb``) and a ``content_hash`` of its values, so the ledger can keep these rows
as versioned factors: the same key with a new hash is a new version. Errors name the file,
the entry and the fix; nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from carbonledger.embodied.cards import parse_gpu_name
from carbonledger.embodied.tables import PROVIDERS, normalize_instance_type
from carbonledger.errors import EmbodiedOverridesError
from carbonledger.uncertainty import EMBODIED_LCA_UNCERTAINTY

KINDS = ("instance_type", "host_model", "gpu_model")
FIELDS = (
    *KINDS,
    "provider",
    "embodied_co2e_kg",
    "host_gpu_count",
    "host_vcpus",
    "source",
    "relative_uncertainty",
    "note",
)


@dataclass(frozen=True, slots=True)
class OverrideRow:
    """One validated entry of the overrides file.

    Attributes:
        key: stable identity (``instance:<provider or *>:<type>``, ``host:<model>``,
            ``gpu:<family form memory>``), lower case.
        kind: ``instance_type``, ``host_model`` or ``gpu_model``.
        name: the instance type or model as written.
        provider: the cloud provider of an instance type (None: any).
        embodied_co2e_kg: the figure: a whole host, or one GPU card for ``gpu_model``.
        host_gpu_count: GPU cards of the host (instance types and host models).
        host_vcpus: vCPUs of the host (instance types and host models).
        source: where the figure comes from.
        relative_uncertainty: relative standard uncertainty of the figure.
        note: free text.
        content_hash: SHA-256 (16 hex digits) of the entry's values.
        entry: 1-based position in the file.
    """

    key: str
    kind: str
    name: str
    provider: str | None
    embodied_co2e_kg: float
    host_gpu_count: int | None
    host_vcpus: int | None
    source: str
    relative_uncertainty: float
    note: str | None
    content_hash: str
    entry: int


@dataclass(frozen=True, slots=True)
class Overrides:
    """The validated file: rows by key, and where it came from."""

    path: str
    rows: dict[str, OverrideRow]

    def instance(self, provider: str | None, instance_type: str) -> OverrideRow | None:
        """The row for an instance type: the provider's own first, then any provider's."""
        name = normalize_instance_type(instance_type)
        for who in (provider, "*"):
            row = self.rows.get(f"instance:{who}:{name}") if who else None
            if row is not None:
                return row
        return None

    def host(self, host_model: str) -> OverrideRow | None:
        """The row for a machine model (DMI product_name), case-insensitive."""
        return self.rows.get(f"host:{_plain(host_model)}")

    def gpu(self, gpu_model: str) -> OverrideRow | None:
        """The row for a GPU model, matched by family, form factor and memory."""
        return self.rows.get(f"gpu:{_gpu_key(gpu_model)}")


EMPTY = Overrides(path="", rows={})


def content_hash(values: dict[str, Any]) -> str:
    """SHA-256 (16 hex digits) of JSON values: equal content, equal hash, across processes."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _plain(name: str) -> str:
    return " ".join(name.split()).lower()


def _gpu_key(model: str) -> str:
    parsed = parse_gpu_name(model)
    parts = [parsed.family, parsed.form or "", f"{parsed.memory_gb}gb" if parsed.memory_gb else ""]
    return " ".join(p for p in parts if p).lower()


def _fail(path: Path, message: str, entry: int | None = None) -> EmbodiedOverridesError:
    where = f"{path}" + (f", entry {entry}" if entry is not None else "")
    return EmbodiedOverridesError(
        f"embodied overrides {where}: {message} (fix the file named by CARBONLEDGER_EMBODIED_PATH, "
        "or unset it to use the shipped figures)",
        path=str(path),
        entry=entry,
    )


def _number(path: Path, i: int, raw: dict[str, Any], name: str, *, integer: bool) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a whole number" if integer else "a number"
        raise _fail(path, f"{name} must be {kind} above 0, got {value!r}", i)
    return int(value) if integer else float(value)


def _text(path: Path, i: int, raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, str | int | float)
        or isinstance(value, bool)
        or not str(value).strip()
    ):
        raise _fail(path, f"{name} must be a non-empty text, got {value!r}", i)
    return str(value).strip()


def _row(path: Path, i: int, raw: Any) -> OverrideRow:
    if not isinstance(raw, dict):
        raise _fail(path, f"each entry must be a mapping of fields, got {raw!r}", i)
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise _fail(path, f"unknown field(s) {unknown}: allowed are {', '.join(FIELDS)}", i)
    kinds = [k for k in KINDS if raw.get(k) is not None]
    if len(kinds) != 1:
        raise _fail(path, f"give exactly one of {', '.join(KINDS)} (got {kinds or 'none'})", i)
    kind = kinds[0]
    name = _text(path, i, raw, kind) or ""
    provider = _text(path, i, raw, "provider")
    if provider is not None:
        provider = provider.lower()
        if kind != "instance_type":
            raise _fail(path, "provider applies to instance_type entries only: remove it", i)
        if provider not in PROVIDERS:
            raise _fail(
                path, f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}", i
            )
    kg = _number(path, i, raw, "embodied_co2e_kg", integer=False)
    if kg is None:
        raise _fail(
            path, "embodied_co2e_kg (kg CO2e of the whole host, or of one card) is missing", i
        )
    source = _text(path, i, raw, "source")
    if source is None:
        raise _fail(path, "source is missing: say where the figure comes from", i)
    gpus = _number(path, i, raw, "host_gpu_count", integer=True)
    vcpus = _number(path, i, raw, "host_vcpus", integer=True)
    if kind == "gpu_model" and (gpus is not None or vcpus is not None):
        raise _fail(path, "a gpu_model entry is one card: remove host_gpu_count/host_vcpus", i)
    uncertainty = _number(path, i, raw, "relative_uncertainty", integer=False)
    if kind == "instance_type":
        key = f"instance:{provider or '*'}:{normalize_instance_type(name)}"
    elif kind == "host_model":
        key = f"host:{_plain(name)}"
    else:
        key = f"gpu:{_gpu_key(name)}"
    values = {
        "kind": kind,
        "name": name,
        "provider": provider,
        "embodied_co2e_kg": kg,
        "host_gpu_count": gpus,
        "host_vcpus": vcpus,
        "source": source,
        "relative_uncertainty": uncertainty,
        "note": _text(path, i, raw, "note"),
    }
    digest = content_hash(values)
    return OverrideRow(
        key=key,
        kind=kind,
        name=name,
        provider=provider,
        embodied_co2e_kg=kg,
        host_gpu_count=gpus,
        host_vcpus=vcpus,
        source=source,
        relative_uncertainty=uncertainty if uncertainty is not None else EMBODIED_LCA_UNCERTAINTY,
        note=values["note"],
        content_hash=digest,
        entry=i,
    )


def parse_overrides(text: str, path: Path) -> Overrides:
    """Validate the YAML text of an overrides file.

    Raises:
        EmbodiedOverridesError: the file is not valid; the message names the entry and fix.
    """
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or set(doc) - {"version", "embodied"}:
        raise _fail(path, "the file must be a mapping with 'version: 1' and an 'embodied' list")
    if doc.get("version") != 1:
        raise _fail(path, f"version must be 1, got {doc.get('version')!r}")
    entries = doc.get("embodied")
    if not isinstance(entries, list):
        raise _fail(path, "'embodied' must be a list of entries")
    rows: dict[str, OverrideRow] = {}
    for i, raw in enumerate(entries, start=1):
        row = _row(path, i, raw)
        if row.key in rows:
            first = rows[row.key].entry
            raise _fail(path, f"entries {first} and {i} both define {row.key}: keep one", i)
        rows[row.key] = row
    return Overrides(path=str(path), rows=rows)


def load_overrides(path: Path | None) -> Overrides:
    """The overrides at ``path`` (``EMPTY`` for None), parsed once per file version.

    Raises:
        EmbodiedOverridesError: the file is missing or invalid.
    """
    if path is None:
        return EMPTY
    try:
        stat = path.stat()
    except OSError as exc:
        raise _fail(path, f"cannot read the file ({exc.strerror or exc})") from None
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> Overrides:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(file, f"cannot read the file ({exc.strerror or exc})") from None
    return parse_overrides(text, file)
