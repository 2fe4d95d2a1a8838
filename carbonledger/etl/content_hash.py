"""The content hash of a loaded run: what lets a pass skip the runs that did not change.

The digest is SHA-256 (first 32 hex digits) of ``repr(sorted(row.items())) + repr(parts)``:
that text is what every ledger so far stores in ``runs.content_hash``, so it must not change
(a different text re-stages every run once). Building it with ``repr`` costs ~45 us a run,
most of it spent on the ``repr`` of the keys and of the tuples around them. This module
writes the same text from format strings made once per key layout (``%r`` is ``repr``), so
only the values are formatted per run: the same digests, several times faster.
:func:`reference_hash` is the plain definition, kept for the tests that compare the two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any


def reference_hash(row: Mapping[str, Any], parts: Sequence[Mapping[str, Any]]) -> str:
    """The definition of the digest (``repr`` of the sorted row and of the parts)."""
    text = repr(sorted(row.items())) + repr(list(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _escape(text: str) -> str:
    return text.replace("%", "%%")


@lru_cache(maxsize=256)
def _row_format(order: tuple[Any, ...]) -> tuple[str, Any] | None:
    """Format string of ``repr(sorted(row.items()))`` for a row with keys in ``order``."""
    if len(order) < 2 or not all(k.__class__ is str for k in order):
        return None
    keys = sorted(order)
    text = "[" + ", ".join(f"({_escape(repr(k))}, %r)" for k in keys) + "]"
    return text, itemgetter(*keys)


@lru_cache(maxsize=256)
def _dict_format(order: tuple[Any, ...]) -> str | None:
    """Format string of ``repr(d)`` for a dict whose keys are ``order`` (in that order)."""
    if not all(k.__class__ is str for k in order):
        return None
    return "{" + ", ".join(f"{_escape(repr(k))}: %r" for k in order) + "}"


def content_hash(row: Mapping[str, Any], parts: Sequence[Mapping[str, Any]]) -> str:
    """A digest of everything loaded for a run (``reference_hash``'s value).

    ``row``: the ``runs`` row; ``parts``: its energy rows and its hardware, as dicts with
    string keys. A layout the format strings do not cover (a key that is not a string, a row
    of fewer than two keys) goes through :func:`reference_hash`.
    """
    layout = _row_format(tuple(row))
    if layout is None:
        return reference_hash(row, parts)
    text, values = layout
    pieces = [text % values(row)]
    for part in parts:
        fmt = _dict_format(tuple(part))
        if fmt is None:
            return reference_hash(row, parts)
        pieces.append(fmt % tuple(part.values()))
    digest = hashlib.sha256((pieces[0] + "[" + ", ".join(pieces[1:]) + "]").encode())
    return digest.hexdigest()[:32]
