"""SQL logging: every statement a database runs, with its duration; secrets never shown.

    from orm_kit.echo import echo
    echo(db)                                        # each statement to stderr, until the process ends
    echo(db, logger=logging.getLogger("app.sql"))   # or to a logger (INFO), or stream=any text file
    with echo(db, stream=buffer):                   # or for one block
        services.find_by_name("checkout-api")
    # sql 0.21 ms  SELECT "t1"."id", ... WHERE ("t1"."name" = ?) LIMIT ?  params: ('checkout-api', 1)

``ORM_KIT_ECHO=1`` turns it on for every database :func:`orm_kit.db.open_database` opens (and so for every
``orm-kit`` command, scratch databases included); ``orm-kit --echo COMMAND`` for the database a command
works on. A failed statement is logged too, with its error's type (its message may quote values).

Never shown: the bound value of a parameter whose column looks secret (``password``, ``token``,
``api_key``, ``secret``, ...; see :func:`looks_secret`), every unplaceable parameter of a statement that
names such a column, a string literal after ``PASSWORD`` in the SQL, and the password of a database URL
passed as a value. peewee binds every value as a parameter, so the SQL text itself holds none.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import peewee

from orm_kit import dialect
from orm_kit.errors import ConfigurationError

__all__ = ["ENV_VAR", "LOGGER", "Echo", "echo", "echo_from_environment", "format_statement", "looks_secret"]

ENV_VAR = "ORM_KIT_ECHO"
LOGGER = "orm_kit.sql"
MASK = "***"

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})
_SECRET = re.compile(
    r"passw(?:or)?d|passwd|pwd|passphrase|secret|token|api_?key|access_?key|private_?key|credential|"
    r"authori[sz]ation|auth_?key|session_?key|cookie|salt|otp|signature", re.IGNORECASE)
_IDENTIFIER = r'(?:"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_$]*))'
# What may stand between a column and its placeholder: a comparison, IN (... earlier placeholders ...),
# BETWEEN [placeholder AND], LIKE, IS [NOT].
_BINDS_TO = re.compile(
    _IDENTIFIER + r"\s*\)?\s*(?:=|<>|!=|<=|>=|<|>|\bNOT\s+LIKE\b|\bLIKE\b|\bILIKE\b|\bGLOB\b|"
    r"\b(?:NOT\s+)?IN\s*\((?:\s*(?:\?|%s)\s*,)*|\bBETWEEN\s+(?:(?:\?|%s)\s+AND\s+)?|\bIS(?:\s+NOT)?)\s*\(?\s*$",
    re.IGNORECASE)
_PAGING = re.compile(r"\b(?:LIMIT|OFFSET)\s*$", re.IGNORECASE)
_LIST_GAP = re.compile(r"(?:\?|%s)\s*,\s*")
_LOOK_BACK = 200  # characters before a placeholder searched for its column (a name, an operator, a few more)
_INSERT = re.compile(r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+[^(]+\(([^)]*)\)\s*VALUES\s*", re.IGNORECASE)
_PASSWORD_LITERAL = re.compile(r"(?i)(\bPASSWORD\s*=?\s*)'(?:[^']|'')*'")
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(@)")
# A multi-row VALUES list or a long IN list is shown folded: "(?, ?), ... (1000 rows)".
_REPEATED_TUPLES = re.compile(r"(\((?:\?|%s)(?:, (?:\?|%s))*\))(?:, \1){3,}")
_LONG_LIST = re.compile(r"\((\?|%s)(?:, (?:\?|%s)){9,}\)")
_SHOWN_VALUE = 80
_SHOWN_PARAMS = 20


def looks_secret(name: str) -> bool:
    """True for a column or parameter name that may hold a secret: password, token, api_key, secret, salt, ..."""
    return bool(_SECRET.search(name))


def _placeholders(sql: str) -> list[int]:
    """Where each bind placeholder (``?`` or ``%s``) starts, skipping quoted strings and identifiers."""
    found: list[int] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        char = sql[i]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            found.append(i)
        elif char == "%" and sql.startswith("%s", i):
            found.append(i)
            i += 1
        elif char == "%" and sql.startswith("%%", i):
            i += 1
        i += 1
    return found


def _insert_columns(sql: str, positions: list[int]) -> dict[int, str]:
    """Placeholder index -> column for ``INSERT ... (cols) VALUES (?, ?), (?, ?)``, when every tuple is plain."""
    match = _INSERT.match(sql)
    if match is None:
        return {}
    columns = [c.strip().strip('"').replace('""', '"') for c in match.group(1).split(",")]
    depth, start, index = 0, match.end(), 0
    mapped: dict[int, str] = {}
    at = {position: n for n, position in enumerate(positions)}
    for i in range(start, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
            index = 0
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
            if depth == 0 and index != len(columns):
                return {}  # an expression in a tuple: the positions do not line up, map nothing
        elif depth == 0 and not (char.isspace() or char == ","):
            break  # past the VALUES list (ON CONFLICT, RETURNING): the comparison rule takes over
        elif depth == 1 and i in at:
            if index >= len(columns):
                return {}
            mapped[at[i]] = columns[index]
            index += 1
    return mapped


def _columns(sql: str, positions: list[int]) -> dict[int, str]:
    """Placeholder index -> the column it binds to, where the SQL says so plainly."""
    mapped = _insert_columns(sql, positions)
    for index, position in enumerate(positions):
        if index in mapped:
            continue
        if index - 1 in mapped and _LIST_GAP.fullmatch(sql, positions[index - 1], position):
            mapped[index] = mapped[index - 1]  # the next item of an IN list: same column, no second search
            continue
        window = max(0, position - _LOOK_BACK)
        if _PAGING.search(sql, window, position):
            mapped[index] = "limit"  # LIMIT ? / OFFSET ?: a row count, never a secret
            continue
        match = _BINDS_TO.search(sql, window, position)
        if match is not None:
            mapped[index] = (match.group(1) or match.group(2) or "").replace('""', '"')
    return mapped


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(rf"\1{MASK}\2", value)
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_VALUE else f"{shown[:_SHOWN_VALUE]}...({len(shown)} chars)"


def _params(sql: str, params: Sequence[Any] | Mapping[str, Any] | None,
            is_secret: Callable[[str], bool]) -> str:
    if not params:
        return ""
    if isinstance(params, Mapping):
        shown = [f"{k}={MASK if is_secret(str(k)) else _show(v)}" for k, v in params.items()]
    else:
        columns = _columns(sql, _placeholders(sql))
        # A placeholder the SQL does not tie to a column is masked when the statement names a secret anywhere.
        careful = any(is_secret(quoted or bare) for quoted, bare in re.findall(_IDENTIFIER, sql))
        shown = []
        for index, value in enumerate(params[:_SHOWN_PARAMS]):
            column = columns.get(index)
            secret = is_secret(column) if column is not None else careful
            shown.append(MASK if secret else _show(value))
    more = f", ... ({len(params) - _SHOWN_PARAMS} more)" if len(params) > _SHOWN_PARAMS else ""
    return f"  params: ({', '.join(shown[:_SHOWN_PARAMS])}{more})"


def _fold_tuples(match: re.Match[str]) -> str:
    count = match.group(0).count("(")
    return f"{match.group(1)}, ... ({count} rows)"


def _fold_list(match: re.Match[str]) -> str:
    return f"({match.group(1)}, ... ({match.group(0).count(',') + 1} values))"


def format_statement(sql: str, params: Sequence[Any] | Mapping[str, Any] | None, seconds: float,
                     error: BaseException | None = None, is_secret: Callable[[str], bool] = looks_secret) -> str:
    """One log line: duration, SQL (``PASSWORD '...'`` masked) and parameters (secret ones masked)."""
    failed = f", failed: {type(error).__name__}" if error is not None else ""
    text = _PASSWORD_LITERAL.sub(rf"\1'{MASK}'", " ".join(sql.split()))
    text = _REPEATED_TUPLES.sub(_fold_tuples, _LONG_LIST.sub(_fold_list, text))
    return f"sql {seconds * 1000:.2f} ms{failed}  {text}{_params(sql, params, is_secret)}"


class Echo:
    """SQL logging switched on for one database; :meth:`stop` (or leaving the ``with`` block) switches it off."""

    def __init__(self, db: peewee.Database, *, stream: TextIO | None = None, logger: logging.Logger | None = None,
                 is_secret: Callable[[str], bool] = looks_secret) -> None:
        target = dialect.unwrap(db)
        if target is None:
            raise ConfigurationError("echo() got a DatabaseProxy that is not initialised yet; initialise it first "
                                     "(or pass the database itself)")
        if stream is not None and not callable(getattr(stream, "write", None)):
            # Found out at the next statement, every statement would fail far from here.
            raise ConfigurationError(f"echo() stream is a {type(stream).__name__}, which has no write(); pass a text "
                                     "stream such as sys.stderr or an open file")
        if logger is not None and not isinstance(logger, logging.Logger):
            raise ConfigurationError(f"echo() logger is a {type(logger).__name__}; pass a logging.Logger")
        self.db = target
        self.stream = stream
        self.logger = logger
        self.is_secret = is_secret
        self._lock = threading.Lock()
        target.query_hooks.append(self._hook)

    def _hook(self, event: peewee.QueryEvent) -> None:
        line = format_statement(event.sql, event.params, event.duration, event.exception, self.is_secret)
        if self.logger is not None:
            self.logger.info(line)
            return
        out = self.stream if self.stream is not None else sys.stderr  # looked up now: tests swap sys.stderr
        with self._lock:
            out.write(line + "\n")
            out.flush()

    @property
    def active(self) -> bool:
        """True until :meth:`stop`."""
        return self._hook in self.db.query_hooks

    def stop(self) -> None:
        """Stop logging this database's statements."""
        if self.active:
            self.db.query_hooks.remove(self._hook)

    def __enter__(self) -> Echo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def echo(db: peewee.Database, *, stream: TextIO | None = None, logger: logging.Logger | None = None,
         is_secret: Callable[[str], bool] = looks_secret) -> Echo:
    """Log each statement ``db`` runs with its duration: to ``logger`` (INFO), else ``stream``, else stderr.

    Asking twice for the same place returns the first :class:`Echo`, so a statement is never logged twice.
    """
    target = dialect.unwrap(db)
    for hook in getattr(target, "query_hooks", ()):
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, Echo) and owner.stream is stream and owner.logger is logger:
            return owner
    return Echo(db, stream=stream, logger=logger, is_secret=is_secret)


def echo_from_environment(db: peewee.Database, environ: Mapping[str, str] | None = None) -> Echo | None:
    """Switch on :func:`echo` (to stderr) when ``ORM_KIT_ECHO`` says so; a value it cannot read is an error."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if value in _OFF:
        return None
    if value not in _ON:
        raise ConfigurationError(f"{ENV_VAR}={value!r} is not a switch; expected 1 to print every SQL statement "
                                 f"with its duration to stderr, or 0 (or unset) for none")
    return echo(db)
