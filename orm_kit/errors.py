"""The one exception tree of orm-kit.

Every error orm-kit raises on purpose is an :class:`OrmKitError`, so callers (and the CLI, which turns
them into one line and a non-zero exit code) can catch the whole family at once. Messages quote the
offending value, say what was expected, and name the fix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import peewee
from playhouse.pool import MaxConnectionsExceeded

from orm_kit._shown import shown


class OrmKitError(Exception):
    """Base class of every error orm-kit raises on purpose."""


class ConfigurationError(OrmKitError):
    """Raised when a database URL or another setting cannot be used as given."""


class DriverMissingError(ConfigurationError):
    """Raised when the database driver a URL needs is not installed."""


class ProjectConfigError(ConfigurationError):
    """Raised when a project's ``[tool.orm-kit]`` settings cannot be used; names the file, the key and the fix."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: [tool.orm-kit] {key}: {problem}")


class DatabaseUnavailableError(OrmKitError):
    """Raised when the database server cannot be reached or refuses the connection."""


class PoolExhaustedError(DatabaseUnavailableError, MaxConnectionsExceeded):
    """Raised when every connection of a pool stayed in use for the whole checkout timeout; names pool and size.

    It is also playhouse.pool's :class:`MaxConnectionsExceeded`, so code written for peewee's pool keeps working.
    """

    def __init__(self, message: str, *, pool: str, max_connections: int, timeout: float) -> None:
        self.pool = pool
        self.max_connections = max_connections
        self.timeout = timeout
        super().__init__(message)


class PrimaryReadOnlyError(DatabaseUnavailableError, peewee.InternalError):
    """Raised when the server written to as the primary refuses the write as read-only (a standby: failover?).

    It is also the :class:`peewee.InternalError` peewee raises for SQLSTATE 25006.
    """


class DiskFullError(OrmKitError, peewee.OperationalError):
    """Raised when the database cannot write because its disk is full; the transaction was rolled back whole.

    It is also the :class:`peewee.OperationalError` peewee raises for it (SQLite's SQLITE_FULL, PostgreSQL's
    SQLSTATE 53100), so code written for peewee keeps working.
    """


class RoutingError(OrmKitError):
    """Raised when a statement cannot be routed as asked: replica() in a transaction, a bad read-your-writes token."""


class ValidationError(OrmKitError):
    """Raised before any SQL is sent when a row breaks its model's rules; carries every failing field.

    Its subclass :class:`UniqueViolationError` is the one raised after the database answered.
    """

    def __init__(self, model: str, errors: Mapping[str, Sequence[str]], row: int | None = None) -> None:
        self.model = model
        self.errors: dict[str, list[str]] = {field: list(messages) for field, messages in errors.items()}
        self.row = row
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.model} row {self.row}" if self.row is not None else self.model
        details = "; ".join(f"{field} {message}" for field, messages in self.errors.items() for message in messages)
        return f"{where} is invalid: {details}"

    def full_messages(self) -> list[str]:
        """Each failure as one sentence, field first ("name is too long (maximum is 63 characters)")."""
        return [f"{field} {message}" for field, messages in self.errors.items() for message in messages]


class UniqueViolationError(ValidationError, peewee.IntegrityError):
    """Raised when the database refuses a duplicate of a unique field; names the field like validation does.

    It is also a :class:`peewee.IntegrityError`, so code written for peewee (``get_or_create``'s race
    handling included) keeps working. On PostgreSQL the surrounding transaction is aborted, as after
    any failed statement: roll back to a savepoint (a nested ``atomic()``) to go on.
    """


class IntegrityViolationError(OrmKitError, peewee.IntegrityError):
    """Raised when the database refuses a write that breaks a foreign key, NOT NULL or CHECK constraint.

    It names the ``table`` and the ``fields`` (field names where a model knows the table, else column names),
    the ``constraint`` when the database says it, the ``model`` written to and, for a multi-row INSERT, the
    ``row`` index; ``errors`` is ``{field: [messages]}`` as on :class:`ValidationError`. It is also a
    :class:`peewee.IntegrityError`, so code written for peewee keeps working (see :mod:`orm_kit.integrity`).
    """

    def __init__(self, message: str, *, table: str, fields: Sequence[str] = (), constraint: str | None = None,
                 model: str | None = None, row: int | None = None,
                 errors: Mapping[str, Sequence[str]] | None = None) -> None:
        self.table = table
        self.fields = tuple(fields)
        self.constraint = constraint
        self.model = model
        self.row = row
        self.errors: dict[str, list[str]] = {name: list(messages) for name, messages in (errors or {}).items()}
        super().__init__(message)


class ForeignKeyViolationError(IntegrityViolationError):
    """Raised when a row refers to one that does not exist, or a row still referred to is deleted; names both tables.

    ``table``/``fields``: the referring side; ``referenced_table``: the table referred to; ``value``: the key;
    ``still_referenced``: True when the write removed (or re-keyed) a row others still refer to.
    """

    def __init__(self, message: str, *, referenced_table: str = "", value: object = None,
                 still_referenced: bool = False, **where: Any) -> None:
        self.referenced_table = referenced_table
        self.value = value
        self.still_referenced = still_referenced
        super().__init__(message, **where)


class NotNullViolationError(IntegrityViolationError):
    """Raised when the database refuses an empty value for a NOT NULL column; names the table and the field."""


class CheckViolationError(IntegrityViolationError):
    """Raised when the database refuses a row that breaks a CHECK constraint; names the constraint and its fields."""


class NotFoundError(OrmKitError):
    """Raised when a row looked up by key does not exist."""

    def __init__(self, model: str, key: object, hint: str | None = None) -> None:
        self.model = model
        self.key = key
        fix = hint or "check the key, or use get_or_none() to allow a miss"
        super().__init__(f"{model} {shown(key)} does not exist ({fix})")


class ConflictError(OrmKitError):
    """Raised when a row was changed by someone else since it was read (optimistic locking)."""


class MigrationError(OrmKitError):
    """Raised when migrations cannot be planned or applied (what was rolled back or recorded, the message says)."""


class ArgumentTypeError(OrmKitError, TypeError):
    """Raised when a toolkit call gets an argument of the wrong kind (a TypeError too, as Python's own are)."""


class InvalidQueryError(OrmKitError):
    """Raised when a filter, sort key, page, cursor or a value compared in a query cannot be used as given."""


class RetryExhaustedError(OrmKitError):
    """Raised when a transaction kept failing with a retryable error until its attempt or time bound ran out."""

    def __init__(self, message: str, attempts: int, elapsed: float) -> None:
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(message)


class CommitOutcomeUnknownError(OrmKitError):
    """Raised when nobody can say whether a COMMIT took effect (SQLSTATE 40003, or the connection died in it).

    Never retried: running the transaction again could apply it twice. Check whether its effect is there.
    """

    def __init__(self, message: str, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class TransactionUsageError(OrmKitError):
    """Raised when transaction blocks are left out of order (an outer block ends while an inner one is open)."""


class SeedError(OrmKitError):
    """Raised when seed files cannot be loaded, naming the file, line, table and field; nothing is written."""

    def __init__(self, reason: str, *, path: str | None = None, line: int | None = None,
                 table: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.table = table
        self.field = field
        where = path or ""
        if path is not None and line is not None:
            where += f", line {line}"
        subject = " ".join(part for part in (table, f"field {shown(field)}" if field else None) if part)
        prefix = ": ".join(part for part in (where, subject) if part)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class SeedProblemsError(SeedError):
    """Raised when seed files have problems, every one found in one pass (up to a cap); nothing is written.

    ``problems``: each a :class:`SeedError` naming file, line, table and field, in file and line order;
    ``more``: how many were found past the cap. Its own ``path``, ``line``, ... are the first problem's.
    """

    def __init__(self, problems: Sequence[SeedError], more: int = 0) -> None:
        self.problems = tuple(problems)
        self.more = more
        first = self.problems[0]
        self.reason, self.path, self.line, self.table, self.field = (
            first.reason, first.path, first.line, first.table, first.field)
        total = len(self.problems) + more
        if total == 1:
            message = str(first)
        else:
            shown = "\n".join(str(problem) for problem in self.problems)
            rest = f"\n... and {more} more" if more else ""
            message = f"{total} problems in the seed files; nothing was written:\n{shown}{rest}"
        OrmKitError.__init__(self, message)


class MigrationRefusedError(MigrationError):
    """Raised before any migration runs when the files and the recorded history disagree."""


class DataLossError(MigrationRefusedError):
    """Raised before a ``down`` that would drop tables or columns holding rows runs unconfirmed; carries the counts.

    ``losses``: what each migration's down() would drop and how many rows it holds
    (:class:`orm_kit.migrate.losses.Loss`); nothing was run.
    """

    def __init__(self, message: str, losses: Sequence[Any]) -> None:
        self.losses = tuple(losses)
        super().__init__(message)


class MigrationLockTimeoutError(MigrationError):
    """Raised when another runner held the migration lock for longer than the lock timeout."""


class MigrationFailedError(MigrationError):
    """Raised when a migration's up() or down() fails; says what was rolled back or recorded as failed."""


class MigrationBlockedError(MigrationFailedError):
    """Raised when a migration statement waited past its lock timeout on every retry; names the blocking backend."""


class DependentObjectsError(MigrationError):
    """Raised instead of a drop that would cascade: names the views, constraints and other objects that depend on it."""


P = ParamSpec("P")
R = TypeVar("R")


def unchained(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, whose :class:`OrmKitError` leaves it with nothing chained and no frames below ``fn``.

    ``raise ... from None`` only hides the error it replaces: ``__context__`` still holds it, and a
    driver's or parser's error about a URL can quote part of its password ("Port could not be cast to
    integer value as 'pa'"). So can the locals of the frames it was raised in. For functions that are
    handed secrets (database URLs), the error is raised again outside the ``except`` block that caught
    it, with its cause, context and traceback dropped: nothing reachable from it holds more than its
    message, which masks the password.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OrmKitError as exc:
            error = exc
        error.__cause__ = None
        error.__context__ = None
        error.__suppress_context__ = True
        # This frame is in the traceback raised from here: a reporter that records frame locals (Sentry,
        # rich) must not find the secret-bearing arguments in it either.
        del args, kwargs
        raise error.with_traceback(None)

    return wrapper


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it (``__cause__``, ``__context__``, a wrapped first argument, a
    wrapper's ``orig``), each once: where a driver's error hides under peewee's or orm-kit's own."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(c for c in (current.__cause__, current.__context__, getattr(current, "orig", None))
                    if isinstance(c, BaseException))
        todo.extend(a for a in current.args[:1] if isinstance(a, BaseException))


def own_sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE a driver's error carries itself (psycopg 3's ``sqlstate``, psycopg2's ``pgcode``), or None."""
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind ``exc`` (peewee wraps the driver's error), or None."""
    return next((state for state in map(own_sqlstate, causes(exc)) if state is not None), None)


def first_line(exc: BaseException, *, typed: bool = True) -> str:
    """``Type: first line of its message`` (the type alone when there is no message), for one-line errors."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if not typed:
        return line or type(exc).__name__
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


class QueryBudgetError(OrmKitError, AssertionError):
    """Raised (failing the test) when a block runs more queries than its budget or one query per row (N+1).

    An :class:`AssertionError` too, so test runners report it as a failed check, not a crash.
    """


class PostgresServerError(OrmKitError):
    """Raised when the throwaway test PostgreSQL server cannot be found, started or used."""


class ClientMissingError(ConfigurationError):
    """Raised when ``orm-kit dbshell`` needs a database client (psql, sqlite3) that is not installed."""
