"""The bounds on every number orm-kit takes from outside: durations, counts, and how a bad one is refused.

    from orm_kit.bounds import MAX_WAIT_SECONDS, check_count, check_seconds
    check_seconds(30, "the SQLite busy timeout")               # 30.0
    check_seconds(float("nan"), "lock_timeout")                 # ConfigurationError, naming the bounds
    check_seconds(0, "statement_timeout", zero="no limit")      # 0.0 allowed, and said what it means
    check_count(4, "lock retries", low=0, high=MAX_RETRIES)     # 4

A number past what the layer below can hold does not fail there with a clear error: SQLite's busy
timeout and PostgreSQL's ``lock_timeout`` and ``statement_timeout`` are C ``int`` milliseconds, so 3,000,000
seconds silently became "never wait" on SQLite and a driver error (aborting the caller's transaction)
on PostgreSQL; NaN compares false with everything and slipped past ``< 0`` checks; infinity turned
into ``OverflowError`` where it was converted to milliseconds; a count of a billion retries built a
list of a billion attempts. Each is a :class:`~orm_kit.errors.ConfigurationError` here, before anything
is sent, saying what was given and what is accepted.
"""

from __future__ import annotations

import math
from typing import Any

from orm_kit._shown import shown
from orm_kit.errors import ConfigurationError

__all__ = ["MAX_RETRIES", "MAX_WAIT_SECONDS", "check_count", "check_seconds"]

#: 2^31 - 1 milliseconds (24.8 days): the longest wait SQLite and PostgreSQL can be told to make.
MAX_WAIT_SECONDS = 2_147_483.647
#: The most retries orm-kit makes of anything (each retry waits; a thousand is already hours).
MAX_RETRIES = 1000


def check_seconds(value: Any, what: str, *, zero: str | None = None, high: float = MAX_WAIT_SECONDS,
                  hint: str = "") -> float:
    """``value`` as seconds: a finite number above 0 (or 0, which means ``zero``) and at most ``high``; ``hint``
    ends the message."""
    ok = (not isinstance(value, bool) and isinstance(value, int | float)
          and (isinstance(value, int) or math.isfinite(value))  # isfinite() of a huge int raises OverflowError
          and (value > 0 or (zero is not None and value == 0)) and value <= high)
    if not ok:
        low = f"0 ({zero})" if zero is not None else "above 0"
        limit = (f"{_number(high)} (about {int(high / 8640) / 10:g} days, the longest wait the database can be told "
                 "to make)" if high == MAX_WAIT_SECONDS else _number(high))
        raise ConfigurationError(f"{what} is {shown(value)}; expected a number of seconds from {low} to {limit}"
                                 + (f"; {hint}" if hint else ""))
    return float(value)


def _number(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def check_count(value: Any, what: str, *, low: int, high: int) -> int:
    """``value`` as a whole number from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{what} is {shown(value)}; expected a whole number from {low:,} to {high:,}")
    return value
