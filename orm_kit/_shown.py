"""Values as error messages quote them: short, whatever the value.

    shown("Checkout API")            # "'Checkout API'"
    shown("x" * 10**8)               # "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
    shown(10**100_000)               # '<an integer of 332193 bits>'
    shown(deeply_nested_list)        # '[[[[[[...]]]]]]'

A message must never cost more than the mistake it reports: ``repr()`` of a 100 MB string builds
another 100 MB, of a list nested 100,000 deep raises ``RecursionError``, of an integer past 4,300
digits raises ``ValueError``, and of a YAML alias bomb (a list holding the same list nine times, nine
levels down) never ends. :func:`shown` looks at a bounded part of the value only.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["shown"]

_MAX_INT_BITS = 256  # about 77 digits: longer numbers are described, not written out


class _Bounded(reprlib.Repr):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.maxstring = width
        self.maxother = width
        self.maxlong = width
        self.maxlevel = 3
        for name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
            setattr(self, name, 6)

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > _MAX_INT_BITS:
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        text = repr(x[:self.maxstring])
        return text if len(x) <= self.maxstring else f"{text[:-1]}...{text[-1]} ({len(x)} bytes)"

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            return super().repr_instance(x, level)
        except Exception:  # noqa: BLE001 - a value whose repr() fails is still shown by its type
            return f"<{type(x).__name__}>"


def shown(value: Any, width: int = 80) -> str:
    """``repr(value)``, at most about ``width`` characters, computed from a bounded part of ``value``."""
    try:
        text = _Bounded(width).repr(value)
    except (RecursionError, ValueError, MemoryError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width + 20 else text[:width] + "..."
