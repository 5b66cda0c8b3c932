"""What SQL a block of code runs: a query log, a query budget and an N+1 detector, for tests.

    from orm_kit.testing import max_queries, no_n_plus_one, record_queries

    with max_queries(2, db=db):                 # QueryBudgetError past two queries, listing every one
        services.find_with_deployments(svc.id)

    with no_n_plus_one(db=db):                  # QueryBudgetError when one SELECT repeats per row
        [d.environment.slug for d in Deployment.select()]      # a lazy foreign key: one query per row

    with record_queries(db=db) as log:
        services.find_by_name("checkout-api")
    assert log.count == 1 and log.queries[0].sql.startswith("SELECT")

With ``db`` the statements are those run on that database (through peewee's ``query_hooks``), each with
its duration and the line of code outside peewee and orm-kit that ran it. Without it, every
database in the process counts, through the ``peewee`` logger, as :class:`playhouse.test_utils.count_queries`
does (which this reuses; there, neither durations nor lines are known). Under the pytest plugin the
``max_queries``, ``no_n_plus_one`` and ``record_queries`` fixtures default to the test's ``orm_kit_db``.

Transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``, ``SAVEPOINT``, ``RELEASE``) is logged but is
not a query: the test's rolled-back transaction turns the code's own transactions into savepoints, and
a budget must not change with that. Every other statement counts, ``PRAGMA`` and ``SET`` included.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import peewee
import playhouse
from playhouse.test_utils import count_queries

from orm_kit import dialect
from orm_kit.errors import ConfigurationError, QueryBudgetError

__all__ = [
    "DEFAULT_N_PLUS_ONE_THRESHOLD",
    "QueryLog",
    "Repeat",
    "Statement",
    "max_queries",
    "no_n_plus_one",
    "record_queries",
    "shape",
]

DEFAULT_N_PLUS_ONE_THRESHOLD = 3

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END")
_PLACEHOLDER_GROUP = re.compile(r"\(\s*(?:\?|%s)(?:\s*,\s*(?:\?|%s))*\s*\)")
_REPEATED_GROUPS = re.compile(r"\(\.\.\.\)(?:\s*,\s*\(\.\.\.\))+")
_SPACE = re.compile(r"\s+")
_COLUMNS = re.compile(r"^(SELECT (?:DISTINCT )?).+?( FROM )", re.IGNORECASE)
# Frames in these files are the machinery between the code under test and the driver: peewee, the standard
# library's context managers and orm-kit itself (its repositories included: the line that called them is
# the one to change).
_MACHINERY = (
    str(Path(peewee.__file__).resolve()),
    str(Path(playhouse.__file__).resolve().parent),
    str(Path(contextlib.__file__).resolve()),
    str(Path(__file__).resolve().parent.parent),
)
_SHOWN_SQL = 300
_SHOWN_STATEMENTS = 50


def shape(sql: str) -> str:
    """``sql`` with lists of placeholders folded and spaces normalised: equal for the same query per row."""
    folded = _PLACEHOLDER_GROUP.sub("(...)", sql)
    return _SPACE.sub(" ", _REPEATED_GROUPS.sub("(...)", folded)).strip()


@dataclass(frozen=True)
class Statement:
    """One statement sent to the database: its SQL, parameters, duration (seconds) and the line that ran it."""

    sql: str
    params: tuple[Any, ...]
    duration: float | None = None
    location: str | None = None

    @property
    def is_control(self) -> bool:
        """True for transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE): not a query."""
        return self.sql.lstrip().upper().startswith(_CONTROL)

    @property
    def is_select(self) -> bool:
        """True for a read (``SELECT`` or ``WITH ... SELECT``)."""
        head = self.sql.lstrip().upper()
        return head.startswith("SELECT") or (head.startswith("WITH") and "INSERT" not in head
                                             and "UPDATE" not in head and "DELETE" not in head)

    @property
    def shape(self) -> str:
        """The statement's shape (see :func:`shape`)."""
        return shape(self.sql)

    def describe(self) -> str:
        """The SQL (a long column list shown as ``...``, then cut at 300 characters) and where it ran."""
        sql = _SPACE.sub(" ", self.sql).strip()
        if len(sql) > _SHOWN_SQL:
            sql = _COLUMNS.sub(r"\1...\2", sql, count=1)
        if len(sql) > _SHOWN_SQL:
            sql = f"{sql[:_SHOWN_SQL]}... ({len(sql) - _SHOWN_SQL} more characters)"
        return f"{sql}  [{self.location}]" if self.location else sql


@dataclass(frozen=True)
class Repeat:
    """One SELECT shape that ran ``len(statements)`` times in a block."""

    shape: str
    statements: tuple[Statement, ...]

    @property
    def parameter_sets(self) -> int:
        """How many different parameter tuples it ran with (one per row, in an N+1)."""
        return len({_hashable(s.params) for s in self.statements})


@dataclass
class QueryLog:
    """The statements a block ran, in order (filled while the block runs)."""

    statements: list[Statement] = field(default_factory=list)

    @property
    def queries(self) -> list[Statement]:
        """The statements that count as queries (everything but transaction control)."""
        return [s for s in self.statements if not s.is_control]

    @property
    def count(self) -> int:
        """How many queries ran."""
        return len(self.queries)

    @property
    def selects(self) -> list[Statement]:
        """The reads among the queries."""
        return [s for s in self.queries if s.is_select]

    def repeats(self, threshold: int = DEFAULT_N_PLUS_ONE_THRESHOLD) -> list[Repeat]:
        """Every SELECT shape that ran at least ``threshold`` times, most frequent first."""
        groups: dict[str, list[Statement]] = {}
        for statement in self.selects:
            groups.setdefault(statement.shape, []).append(statement)
        found = [Repeat(key, tuple(group)) for key, group in groups.items() if len(group) >= threshold]
        return sorted(found, key=lambda r: -len(r.statements))


def _hashable(params: Sequence[Any]) -> tuple[str, ...]:
    return tuple(repr(p) for p in params)


def _location() -> str | None:
    """``file:line in function`` of the innermost frame outside peewee, contextlib and orm-kit."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_MACHINERY) and not filename.startswith("<frozen"):
            return f"{_short(filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return None


def _short(filename: str) -> str:
    path = Path(filename)
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return filename


def _target(db: peewee.Database) -> peewee.Database:
    target = dialect.unwrap(db)
    if target is None:
        raise ConfigurationError("the DatabaseProxy passed as db= is not initialised yet; initialise it (or pass "
                                 "the database itself) before recording its queries")
    return target


@contextlib.contextmanager
def record_queries(db: peewee.Database | None = None) -> Iterator[QueryLog]:
    """Log every statement run inside the block: on ``db``, or on any database when ``db`` is None."""
    log = QueryLog()
    if db is None:
        with count_queries() as counter:  # type: ignore[no-untyped-call]  # playhouse is untyped
            try:
                yield log
            finally:
                log.statements.extend(Statement(str(record.msg[0]), tuple(record.msg[1] or ()))
                                      for record in counter.get_queries())
        return
    target = _target(db)
    lock = threading.Lock()

    def hook(event: peewee.QueryEvent) -> None:
        statement = Statement(event.sql, tuple(event.params or ()), event.duration, _location())
        with lock:
            log.statements.append(statement)

    target.query_hooks.append(hook)
    try:
        yield log
    finally:
        target.query_hooks.remove(hook)


@contextlib.contextmanager
def max_queries(limit: int, db: peewee.Database | None = None) -> Iterator[QueryLog]:
    """Fail with :class:`QueryBudgetError` when the block runs more than ``limit`` queries (listing them)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigurationError(f"max_queries({limit!r}): expected a whole number of queries, 0 or more")
    with record_queries(db) as log:
        yield log
    if log.count > limit:
        queries = log.queries
        listed = "\n".join(f"  {n}. {s.describe()}" for n, s in enumerate(queries[:_SHOWN_STATEMENTS], 1))
        more = f"\n  ... and {len(queries) - _SHOWN_STATEMENTS} more" if len(queries) > _SHOWN_STATEMENTS else ""
        raise QueryBudgetError(
            f"{log.count} queries ran where the budget is {limit}:\n{listed}{more}\n"
            "load related rows with a join or prefetch(), or raise the budget if the new queries are meant")


@contextlib.contextmanager
def no_n_plus_one(db: peewee.Database | None = None, *,
                  threshold: int = DEFAULT_N_PLUS_ONE_THRESHOLD) -> Iterator[QueryLog]:
    """Fail with :class:`QueryBudgetError` when one SELECT shape runs ``threshold`` times or more in the block.

    That is the mark of an N+1: a query per row of an earlier result (a lazy foreign key read in a loop,
    a ``get()`` per id). The message shows the query and where it ran.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2:
        raise ConfigurationError(f"no_n_plus_one(threshold={threshold!r}): expected a whole number, 2 or more")
    with record_queries(db) as log:
        yield log
    repeats = log.repeats(threshold)
    if repeats:
        worst = repeats[0]
        first = worst.statements[0]
        where = sorted({s.location for s in worst.statements if s.location})
        sets = worst.parameter_sets
        how = (f"with {sets} different parameter sets (a query per row)" if sets > 1
               else "each time with the same parameters (the same row read again)")
        lines = [
            f"N+1 queries: one SELECT ran {len(worst.statements)} times in this block, {how}"
            + (f", from {', '.join(where)}" if where else "") + ":",
            f"  {Statement(first.sql, first.params).describe()}",
        ]
        lines += [f"and {len(r.statements)} times: {Statement(r.statements[0].sql, ()).describe()}"
                  for r in repeats[1:]]
        lines.append("load those rows in one query instead: a join (select(A, B).join(B)), prefetch(), or an "
                     "IN list of the ids")
        raise QueryBudgetError("\n".join(lines))
