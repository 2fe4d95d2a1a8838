"""Which ADEME/Hubblo GPU card a GPU model name means (documented, deterministic matching).

A name is parsed into a *family* (``A100``, ``H100``, ``L4``, ``RTX A4500``...), a *form
factor* (``PCIE``, ``SXM``, ``NVL``) and a *memory size* in GB, after dropping vendor words
(``NVIDIA``, ``Tesla``, ``GeForce``) and separators. ``NVIDIA A100-SXM4-40GB`` is
``(A100, SXM, 40)``; ``NVIDIA H100 80GB HBM3`` is ``(H100, SXM, 80)`` (HBM3 boards are SXM);
``Tesla P100-PCIE-16GB`` is ``(P100, PCIE, 16)``.

The card is the study's card of the same family (never a neighbour: an ``H200``, ``L40S`` or
``A10`` matches no card). Among the family's cards the one that agrees on form factor, then on
memory, wins; a remaining tie goes to the larger figure (conservative). The match is
``exact`` when nothing that both names state differs and only one card fits, else
``nearest``, with a note saying what differs (``A100-SXM4-80GB`` -> the SXM4 40 GB card,
memory differs; ``H100 80GB HBM3`` -> the PCIe 80 GB card, form factor differs; a bare
``A100`` fits two cards). A nearest card carries extra uncertainty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carbonledger.embodied.tables import CardRecord, cards

_DROP = {"NVIDIA", "TESLA", "GEFORCE", "AMD"}
_MEMORY = re.compile(r"^(\d+)GB$")
_FORMS = {"PCIE": "PCIE", "SXM": "SXM", "SXM2": "SXM", "SXM3": "SXM", "SXM4": "SXM"}
_FORMS |= {"SXM5": "SXM", "NVL": "NVL", "HBM3": "SXM", "HBM3E": "SXM"}


@dataclass(frozen=True, slots=True)
class GpuName:
    """A GPU model name taken apart: family, form factor (or None), memory GB (or None)."""

    family: str
    form: str | None
    memory_gb: int | None


@dataclass(frozen=True, slots=True)
class CardMatch:
    """The study's card a GPU model stands for.

    Attributes:
        card: the card record (kg CO2e per phase).
        quality: ``exact`` or ``nearest``.
        note: what differs for a nearest card (None when exact).
    """

    card: CardRecord
    quality: str
    note: str | None


def parse_gpu_name(name: str) -> GpuName:
    """Take a GPU model name apart (see the module docstring)."""
    tokens = re.sub(r"[-_/(),]+", " ", name.upper()).split()
    family: list[str] = []
    form: str | None = None
    memory: int | None = None
    for token in tokens:
        if token in _DROP:
            continue
        found = _MEMORY.match(token)
        if found:
            memory = int(found.group(1))
        elif token in _FORMS:
            form = form or _FORMS[token]
        else:
            family.append(token)
    return GpuName(" ".join(family), form, memory)


def match_card(gpu_model: str) -> CardMatch | None:
    """The study's card for ``gpu_model``, or None when no card of its family exists."""
    wanted = parse_gpu_name(gpu_model)
    if not wanted.family:
        return None
    candidates = [(parse_gpu_name(c.name), c) for c in cards().values()]
    family = [(parsed, c) for parsed, c in candidates if parsed.family == wanted.family]
    if not family:
        return None

    def score(item: tuple[GpuName, CardRecord]) -> tuple[int, int, float]:
        parsed, card = item
        return (
            int(wanted.form is not None and parsed.form == wanted.form),
            int(wanted.memory_gb is not None and parsed.memory_gb == wanted.memory_gb),
            card.embodied_kg,
        )

    best = max(family, key=score)
    parsed, card = best
    differs = []
    if wanted.form and parsed.form and wanted.form != parsed.form:
        differs.append(f"form factor {wanted.form} vs {parsed.form}")
    if wanted.memory_gb and parsed.memory_gb and wanted.memory_gb != parsed.memory_gb:
        differs.append(f"memory {wanted.memory_gb} GB vs {parsed.memory_gb} GB")
    tied = sum(score(item)[:2] == score(best)[:2] for item in family)
    if not differs and tied > 1:
        differs.append(f"{tied} cards of the family fit the name: took the largest")
    if not differs:
        return CardMatch(card, "exact", None)
    note = f"{gpu_model!r} has no card of its own in the study: {card.name} ({', '.join(differs)})"
    return CardMatch(card, "nearest", note)
