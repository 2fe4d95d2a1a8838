"""``*_VISIBLE_DEVICES`` lists, read the way CUDA and ROCm read them (vendor-neutral part).

Unset means every device, an empty value means none, entries are indices or (unique,
case-insensitive prefixes of) device identifiers, and the list stops at the first entry that
matches no device. Some entries are kept aside unparsed (NVIDIA's ``MIG-`` instance UUIDs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Selection:
    """What a visible-devices list selects.

    Attributes:
        indices: device indices in the list's order, without repeats.
        kept: entries set aside by the caller's ``keep`` (e.g. MIG instance UUIDs).
        invalid: the first entry that matched no device (later entries were ignored).
    """

    indices: list[int]
    kept: list[str] = field(default_factory=list)
    invalid: str | None = None


def select_visible(
    env: str | None,
    count: int,
    identifiers: Callable[[], Sequence[Sequence[str]]],
    *,
    keep: Callable[[str], bool] = lambda entry: False,
) -> Selection:
    """Parse one visible-devices list over ``count`` devices.

    Args:
        env: the variable's value (``None``: unset).
        count: how many devices there are.
        identifiers: each device's identifiers (UUIDs, serials), asked only when an entry is
            not an index.
        keep: entries to set aside unparsed.
    """
    if env is None:
        return Selection(list(range(count)))
    chosen: list[int] = []
    kept: list[str] = []
    ids: Sequence[Sequence[str]] | None = None
    for raw in env.split(","):
        entry = raw.strip()
        if entry and keep(entry):
            if entry not in kept:
                kept.append(entry)
            continue
        index: int | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) < count else None
        elif entry:
            ids = ids if ids is not None else identifiers()
            low = entry.lower()
            matches = [
                i for i, names in enumerate(ids) if any(n.lower().startswith(low) for n in names)
            ]
            index = matches[0] if len(matches) == 1 else None
        if index is None:
            return Selection(chosen, kept, entry)
        if index not in chosen:
            chosen.append(index)
    return Selection(chosen, kept)
