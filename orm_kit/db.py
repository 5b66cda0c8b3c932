"""Database URLs to peewee databases, opened the same way everywhere.

One URL decides the database::

    from orm_kit.db import open_database, resolve_url
    db = open_database(resolve_url())          # --database, else env, else sqlite:///orm_kit.db
    db.bind(MODELS)                            # models are bound explicitly, never patched

SQLite opens with foreign keys on, WAL, a busy timeout and ``synchronous=NORMAL``; its outermost
transactions begin ``IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing
with "database is locked" half-way through. PostgreSQL goes through psycopg 3.

Passwords never leave this module in clear: every message names the URL through :func:`redact_url`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import peewee
from playhouse.db_url import parseresult_to_dict

from orm_kit.dialect import is_sqlite
from orm_kit.echo import echo_from_environment
from orm_kit.errors import ConfigurationError, DatabaseUnavailableError, DriverMissingError, first_line

__all__ = [
    "DEFAULT_URL",
    "ENV_VARS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "open_database",
    "redact_url",
    "resolve_url",
]

DEFAULT_URL = "sqlite:///orm_kit.db"
ENV_VARS = ("ORM_KIT_DATABASE_URL", "DATABASE_URL")
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

_SQLITE_SCHEMES = frozenset({"sqlite"})
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
_SQLITE_OPTIONS = frozenset({"timeout"})
_MASK = "***"


def resolve_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to use: ``explicit``, else ``ORM_KIT_DATABASE_URL``, else ``DATABASE_URL``, else the default."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    for name in ENV_VARS:
        value = env.get(name)
        if value:
            return value
    return DEFAULT_URL


_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd)=)([^&#]*)")


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where ``user:password`` sits in ``url`` as (start, end), or ``None`` when there is no password.

    The userinfo runs to the LAST ``@``: a password may hold unencoded ``/``, ``?``, ``#`` or ``@``, which
    ``urlsplit`` would mistake for the end of the host. Masking too much is safe; too little is not.
    """
    prefix = _SCHEME_PREFIX.match(url)
    if prefix is None:
        return None
    start = prefix.end()
    end = url.rfind("@")
    if end < start or ":" not in url[start:end]:
        return None
    return start, end


def redact_url(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` query parameter) replaced by ``***``."""
    shown = url
    span = _userinfo(url)
    if span is not None:
        start, end = span
        user = url[start:end].split(":", 1)[0]
        shown = f"{url[:start]}{user}:{_MASK}{url[end:]}"
    return _QUERY_PASSWORD.sub(rf"\1{_MASK}", shown)


def _secrets(url: str) -> list[str]:
    found = []
    span = _userinfo(url)
    if span is not None:
        password = url[span[0]:span[1]].split(":", 1)[1]
        found += [password, unquote(password)]
    found += [unquote(m.group(2)) for m in _QUERY_PASSWORD.finditer(url)]
    return [secret for secret in found if secret]


def scrub(text: str, url: str) -> str:
    """``text`` with every password found in ``url`` masked (driver messages can echo connection strings)."""
    for secret in _secrets(url):
        text = text.replace(secret, _MASK)
    return text


def _sqlite(path: str, options: dict[str, Any], shown: str) -> peewee.SqliteDatabase:
    raw = options.pop("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ConfigurationError(
            f"database URL {shown!r} has timeout={raw!r}; expected a number of seconds, e.g. ?timeout=30"
        )
    timeout = float(raw)
    pragmas = {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": int(timeout * 1000),
        "synchronous": "normal",
    }
    if path == ":memory:":
        pragmas.pop("journal_mode")
    # lock_type=IMMEDIATE: the outermost transaction takes the write lock at BEGIN, so a second
    # writer waits on the busy timeout instead of failing when it upgrades a read lock mid-way.
    return peewee.SqliteDatabase(path, pragmas=pragmas, timeout=timeout, lock_type="IMMEDIATE", **options)


def _postgres(options: dict[str, Any], url: str) -> peewee.PostgresqlDatabase:
    try:
        import psycopg  # noqa: F401  (only checking that the driver is there)
    except ImportError:
        raise DriverMissingError(
            f"database URL {redact_url(url)!r} needs the psycopg driver, which is not installed "
            "(install it with: pip install 'orm-kit[postgres]')"
        ) from None
    database = options.pop("database")
    options.setdefault("connect_timeout", 10)
    return peewee.PostgresqlDatabase(database, prefer_psycopg3=True, **options)


def open_database(url: str, *, connect: bool = True, must_exist: bool = False) -> peewee.Database:
    """A peewee database for ``url``; with ``connect`` (the default) the connection is opened and checked.

    With ``must_exist`` a SQLite file that is not there is refused instead of created (for commands that
    only read or change an existing database: a mistyped path must not leave an empty database behind).

    Raises :class:`ConfigurationError` for an unknown scheme or a URL without a database name,
    :class:`DriverMissingError` when the driver is not installed, and :class:`DatabaseUnavailableError`
    when the server cannot be reached. Every message shows the URL with its password masked.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        if "@" in parts.path:
            raise ValueError("an '@' after the host: the password holds an unencoded '/', '?' or '#'")
    except ValueError:
        raise ConfigurationError(
            f"database URL {shown!r} cannot be parsed: expected postgresql://user:password@host:5432/dbname "
            "with a numeric port (percent-encode '/', '@', ':', '?' and '#' in the password, e.g. '/' as %2F)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _SQLITE_SCHEMES | _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"database URL {shown!r} has scheme {scheme or '(none)'!r}; expected sqlite:///path/to/file.db "
            "or postgresql://user:password@host:5432/dbname"
        )
    try:
        options = parseresult_to_dict(parts, unquote_password=True, unquote_user=True)  # type: ignore[no-untyped-call]
    except ValueError:
        # The driver's message would quote part of the URL, password included: say it in our words.
        raise ConfigurationError(
            f"database URL {shown!r} cannot be parsed: expected postgresql://user:password@host:5432/dbname "
            "with a numeric port (percent-encode '/', '@', ':', '?' and '#' in the password, e.g. '/' as %2F)"
        ) from None
    if scheme in _SQLITE_SCHEMES:
        if parts.netloc:
            raise ConfigurationError(
                f"database URL {shown!r} names a host {parts.netloc!r}; a SQLite URL takes three slashes "
                f"(sqlite:///relative.db or sqlite:////absolute/path.db)"
            )
        path = options.pop("database") or ":memory:"
        unknown = sorted(set(options) - _SQLITE_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"database URL {shown!r} has unknown SQLite option(s) {', '.join(unknown)}; "
                f"the only one is timeout (seconds), e.g. sqlite:///orm_kit.db?timeout=30"
            )
        if must_exist and path != ":memory:" and not os.path.exists(path):
            raise DatabaseUnavailableError(
                f"database file {path!r} does not exist (from {shown!r}): check the path, or run `orm-kit migrate` "
                "to create it")
        db: peewee.Database = _sqlite(path, options, shown)
    else:
        if not options.get("database"):
            raise ConfigurationError(
                f"database URL {shown!r} names no database; expected postgresql://user:password@host:5432/dbname"
            )
        db = _postgres(options, url)
    echo_from_environment(db)  # ORM_KIT_ECHO=1: every statement with its duration, to stderr
    if connect:
        try:
            db.connect(reuse_if_open=True)
        except (peewee.PeeweeException, OSError, ValueError, TypeError) as exc:
            reason = scrub(first_line(exc, typed=False), url)
            hint = ("check that the folder exists and is writable" if is_sqlite(db)
                    else "check that the server is running and the URL, user and password are right")
            raise DatabaseUnavailableError(f"cannot open database {shown}: {reason} ({hint})") from None
    return db
