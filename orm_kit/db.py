"""Database URLs to peewee databases, opened the same way everywhere.

One URL decides the database::

    from orm_kit.db import open_database, resolve_url
    db = open_database(resolve_url())          # --database, else env, else sqlite:///orm_kit.db
    db.bind(MODELS)                            # models are bound explicitly, never patched

    open_database("postgresql+pool://app:secret@db/platform?max_connections=20&timeout=5")   # a pool
    open_database("postgresql://app:secret@db-a,db-b/platform?target_session_attrs=read-write")
    open_database("postgresql://app:secret@pgbouncer:6432/platform?pgbouncer=transaction")
    open_database("cockroachdb://app:secret@crdb:26257/platform?sslmode=verify-full")

SQLite opens with foreign keys on, WAL, a busy timeout and ``synchronous=NORMAL``; its outermost
transactions begin ``IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing
with "database is locked" half-way through. PostgreSQL and CockroachDB go through psycopg 3; every
query option the URL has goes to the driver (``sslmode``, ``target_session_attrs``, ...) except
orm-kit's own, which are taken out first: the pool's (``max_connections``, ``timeout``,
``stale_timeout``, with a ``+pool`` scheme, see :mod:`orm_kit.pool`) and ``pgbouncer=transaction``
(prepared statements off: a transaction pooler hands each transaction to another server session,
where psycopg's prepared statements do not exist). A libpq multi-host URL (``host1:5432,host2:5433``)
is accepted and handed to libpq as host and port lists. This module never reads replica URLs:
:func:`orm_kit.connect` does (:mod:`orm_kit.replicas`), so whatever opens a database through
:func:`open_database` alone, the ``orm-kit`` command included, always talks to the primary.

Migrations need what a transaction pooler cannot give (a server session of their own, for ``CREATE
INDEX CONCURRENTLY``, session ``lock_timeout`` and the run claim), so, as Prisma's ``directUrl``, they
may take another URL to the same database than the application's pooled one::

    ORM_KIT_DATABASE_URL=postgresql://app:secret@pgbouncer:6432/platform?pgbouncer=transaction   # the application
    ORM_KIT_DIRECT_DATABASE_URL=postgresql://app:secret@db:5432/platform                        # orm-kit migrate
    resolve_migration_url()                    # --direct-database, --database, then the environment

Passwords never leave this module in clear: every message names the URL through :func:`redact_url`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

import peewee
from playhouse.db_url import parseresult_to_dict

from orm_kit._shown import shown as shown_value
from orm_kit.backends import PostgresDatabase, SqliteDatabase
from orm_kit.bounds import MAX_WAIT_SECONDS, check_seconds
from orm_kit.cockroach import CockroachDatabase
from orm_kit.dialect import is_sqlite
from orm_kit.echo import echo_from_environment
from orm_kit.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    DiskFullError,
    DriverMissingError,
    first_line,
    unchained,
)
from orm_kit.pool import PooledCockroachDatabase, PooledPostgresDatabase, PoolSettings

__all__ = [
    "DEFAULT_URL",
    "DIRECT_ENV_VAR",
    "ENV_VARS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "ParsedURL",
    "check_connection",
    "database_arguments",
    "mark_pooler",
    "open_database",
    "parse_url",
    "pool_name",
    "redact_url",
    "resolve_migration_url",
    "resolve_url",
    "scrub",
    "shown_url",
    "sqlite_file",
]

DEFAULT_URL = "sqlite:///orm_kit.db"
ENV_VARS = ("ORM_KIT_DATABASE_URL", "DATABASE_URL")
#: Where migrations find their direct connection to the database (past a transaction pooler).
DIRECT_ENV_VAR = "ORM_KIT_DIRECT_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
MAX_POOL_CONNECTIONS = 10_000  # PostgreSQL's max_connections tops out at 262,143; a pool this big is a typo

Family = Literal["sqlite", "postgres", "cockroach"]

# scheme -> (family, pooled); the +pool and crdb names are playhouse.db_url's, so its URLs work here too.
_SCHEMES: dict[str, tuple[Family, bool]] = {
    "sqlite": ("sqlite", False),
    "postgres": ("postgres", False), "postgresql": ("postgres", False),
    "postgres+pool": ("postgres", True), "postgresql+pool": ("postgres", True),
    "cockroachdb": ("cockroach", False), "crdb": ("cockroach", False),
    "cockroachdb+pool": ("cockroach", True), "crdb+pool": ("cockroach", True),
}
_SQLITE_OPTIONS = frozenset({"timeout"})
_POOL_OPTIONS = ("max_connections", "timeout", "stale_timeout")
_PGBOUNCER_MODES = ("transaction", "session")
_REPLICA_OPTIONS = ("max_lag_seconds", "max_lag_bytes")  # taken out by orm_kit.replicas
_MASK = "***"
_EXPECTED = ("expected postgresql://user:password@host:5432/dbname with a numeric port (percent-encode '/', "
             "'@', ':', '?' and '#' in the password, e.g. '/' as %2F)")


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


def resolve_migration_url(direct: str | None = None, explicit: str | None = None,
                          environ: Mapping[str, str] | None = None) -> str:
    """The URL migrations use: ``direct`` (``--direct-database``), else ``explicit`` (``--database``), else
    ``ORM_KIT_DIRECT_DATABASE_URL``, else what :func:`resolve_url` finds in the environment."""
    if direct:
        return direct
    if explicit:
        # A URL typed for this command wins over the environment: --database naming another database must
        # never be migrated through the direct URL of the one the environment describes.
        return explicit
    env = os.environ if environ is None else environ
    return env.get(DIRECT_ENV_VAR) or resolve_url(None, env)


# A scheme with its slashes, however many: "postgresql:/app:pw@db" (one slash) or "app:pw@db" (none) still hold
# a password before the last '@', and a mistyped URL is exactly the one an error message quotes.
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/*(?=[^@]*@)")
# password= as a query option or a libpq keyword (host=db password=secret), quoted or not.
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|[?&;\s])(?:password|passwd)\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&#\s]*)")


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where ``user:password`` sits in ``url`` as (start, end), or ``None`` when there is no password.

    The userinfo runs to the LAST ``@``: a password may hold unencoded ``/``, ``?``, ``#`` or ``@``, which
    ``urlsplit`` would mistake for the end of the host. Masking too much is safe; too little is not.
    """
    end = url.rfind("@")
    if end < 0:
        return None
    prefix = _SCHEME_PREFIX.match(url)
    # Without slashes ("app:secret@db") the "scheme" may be the user name: take all of it as the userinfo.
    start = prefix.end() if prefix is not None and prefix.group().endswith("/") else 0
    return (start, end) if ":" in url[start:end] else None


def redact_url(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` query parameter) replaced by ``***``."""
    shown = url
    span = _userinfo(url)
    if span is not None:
        start, end = span
        user = url[start:end].split(":", 1)[0]
        shown = f"{url[:start]}{user}:{_MASK}{url[end:]}"
    return _QUERY_PASSWORD.sub(rf"\1{_MASK}", shown)


def shown_url(url: str, width: int = 200) -> str:
    """``url`` as a message quotes it: its password masked (:func:`redact_url`), a long one shortened in the middle."""
    shown = redact_url(url)
    if len(shown) <= width:
        return shown
    return f"{shown[:width * 2 // 3]}...({len(shown):,} characters)...{shown[-width // 4:]}"


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
    try:
        # SQLite keeps its busy timeout in a C int of milliseconds: past 2^31 ms it became "never wait".
        timeout = check_seconds(raw, "the SQLite busy timeout", zero="do not wait")
    except ConfigurationError:
        raise ConfigurationError(
            f"database URL {shown!r} has timeout={shown_value(raw)}; expected a number of seconds from 0 to "
            "2,147,483.647 (about 24.8 days, the longest SQLite can wait), e.g. ?timeout=30") from None
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
    return SqliteDatabase(path, pragmas=pragmas, timeout=timeout, lock_type="IMMEDIATE", **options)


@dataclass(frozen=True)
class ParsedURL:
    """A database URL taken apart: the driver's keywords, and orm-kit's own options taken out of it."""

    url: str = field(repr=False)
    shown: str
    family: Family
    database: str
    driver: dict[str, Any] = field(repr=False)  # what the driver gets; holds the password
    pool: PoolSettings | None = None
    pgbouncer: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _split(url: str, shown: str) -> SplitResult:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    # An '@' after the host: the password holds an unencoded '/', '?' or '#', so what urlsplit calls the path,
    # query or fragment is the rest of the password, and no message may quote any of it.
    if parts is None or "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        raise ConfigurationError(f"database URL {shown!r} cannot be parsed: {_EXPECTED}")
    return parts


def _host_lists(hosts: str, shown: str) -> tuple[str, str]:
    """libpq's ``host`` and ``port`` lists for a multi-host ``h1:5432,h2,[::1]:5433``."""
    names, ports = [], []
    for item in hosts.split(","):
        if item.startswith("["):
            name, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        else:
            name, _, port = item.partition(":")
        if not name or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
            raise ConfigurationError(
                f"database URL {shown!r} has host {item!r} in its host list; expected host or host:port "
                "items separated by commas, e.g. postgresql://app:secret@db-a:5432,db-b:5432/platform")
        names.append(name)
        ports.append(port)
    # An empty item in libpq's port list means the default port.
    return ",".join(names), ",".join(ports) if any(ports) else ""


def _driver_options(parts: SplitResult, shown: str) -> dict[str, Any]:
    userinfo, _, hosts = parts.netloc.rpartition("@")
    multi = "," in hosts
    if multi:  # urlsplit reads one host only: parse a stand-in and put the lists back
        parts = parts._replace(netloc=f"{userinfo}@localhost" if userinfo else "localhost")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        options: dict[str, Any] = parseresult_to_dict(  # type: ignore[no-untyped-call]
            parts, unquote_password=True, unquote_user=True)
    except ValueError:
        # The driver's message would quote part of the URL, password included: say it in our words.
        raise ConfigurationError(f"database URL {shown!r} cannot be parsed: {_EXPECTED}") from None
    if multi:
        options["host"], port = _host_lists(hosts, shown)
        options.pop("port", None)
        if port:
            options["port"] = port
    return options


def _number(shown: str, name: str, value: Any, *, integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, int if integer else int | float) and value > 0 and (
        value <= (MAX_POOL_CONNECTIONS if integer else MAX_WAIT_SECONDS))
    if not ok:
        kind = "a whole number above 0" if integer else "a number of seconds above 0"
        extra = " or none" if allow_none else ""
        raise ConfigurationError(f"database URL {shown!r} has {name}={shown_value(value)}; expected {kind}{extra}, "
                                 f"at most {MAX_POOL_CONNECTIONS if integer else MAX_WAIT_SECONDS:,}")
    return value if integer else float(value)


def _pool_settings(options: dict[str, Any], pooled: bool, shown: str) -> PoolSettings | None:
    given = {name: options.pop(name) for name in _POOL_OPTIONS if name in options}
    if not pooled:
        if given:
            raise ConfigurationError(
                f"database URL {shown!r} sets {', '.join(sorted(given))}, which are connection-pool options; "
                "ask for a pool with a +pool scheme, e.g. postgresql+pool://app:secret@db/platform?max_connections=20")
        return None
    if given.get("timeout") == 0:
        raise ConfigurationError(
            f"database URL {shown!r} has timeout=0, which means 'wait for ever' to peewee and 'do not wait' to "
            "other pools; give the seconds a checkout may wait for a free connection, e.g. timeout=5")
    settings = PoolSettings()
    return PoolSettings(
        max_connections=_number(shown, "max_connections", given.get("max_connections", settings.max_connections),
                                integer=True),
        timeout=_number(shown, "timeout", given.get("timeout", settings.timeout)),
        stale_timeout=_number(shown, "stale_timeout", given.get("stale_timeout", settings.stale_timeout),
                              allow_none=True),
    )


def _pgbouncer(options: dict[str, Any], shown: str) -> str | None:
    if "pgbouncer" not in options:
        return None
    mode = options.pop("pgbouncer")
    if mode not in _PGBOUNCER_MODES:
        raise ConfigurationError(
            f"database URL {shown!r} has pgbouncer={mode!r}; expected pgbouncer=transaction (PgBouncer's "
            "pool_mode = transaction: prepared statements off) or pgbouncer=session (nothing to change); "
            "statement mode cannot run transactions, which orm-kit needs")
    if mode == "transaction":
        threshold = options.get("prepare_threshold")
        if threshold is not None and "prepare_threshold" in options:
            raise ConfigurationError(
                f"database URL {shown!r} has pgbouncer=transaction and prepare_threshold={threshold!r}; behind "
                "a transaction pooler prepared statements must be off (and 0 means *always* prepare): drop "
                "prepare_threshold, pgbouncer=transaction turns them off")
        options["prepare_threshold"] = None  # None is psycopg's "never prepare"; 0 would be "always"
    return str(mode)


def _bare_path(url: str) -> str | None:
    """``url`` when it is a file path rather than a URL (``orm_kit.db``, ``/var/lib/x.db``, ``C:\\x.db``)."""
    if "://" in url or not url.strip():
        return None
    if urlsplit(url).scheme and not re.match(r"^[A-Za-z]:[\\/]", url):
        return None  # "postgres:..." without slashes is a broken URL, not a path
    return url


@unchained
def parse_url(url: str, *, extras: Collection[str] = ()) -> ParsedURL:
    """``url`` taken apart (``extras``: further query options the caller handles, taken out too).

    Raises :class:`ConfigurationError` (the password masked) for anything that cannot be used as given.
    """
    shown = shown_url(url)
    parts = _split(url, shown)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        path = _bare_path(url)
        if path is not None:
            raise ConfigurationError(
                f"database URL {shown!r} is a file path, not a URL: did you mean sqlite:///{shown} (sqlite: and three "
                "slashes, then the path)? PostgreSQL is postgresql://user:password@host:5432/dbname")
        raise ConfigurationError(
            f"database URL {shown!r} has scheme {scheme or '(none)'!r}; expected sqlite:///path/to/file.db, "
            "postgresql://user:password@host:5432/dbname (postgresql+pool:// for a connection pool) or "
            "cockroachdb://user:password@host:26257/dbname"
        )
    family, pooled = _SCHEMES[scheme]
    if family == "sqlite":
        if parts.netloc:
            raise ConfigurationError(
                f"database URL {shown!r} names a host {urlsplit(shown).netloc!r}; a SQLite URL takes three slashes "
                f"(sqlite:///relative.db or sqlite:////absolute/path.db)"
            )
        options = _driver_options(parts, shown)
        path = options.pop("database") or ":memory:"
        unknown = sorted(set(options) - _SQLITE_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"database URL {shown!r} has unknown SQLite option(s) {', '.join(unknown)}; "
                f"the only one is timeout (seconds), e.g. sqlite:///orm_kit.db?timeout=30"
            )
        return ParsedURL(url, shown, family, path, options)
    options = _driver_options(parts, shown)
    database = options.pop("database")
    if not database:
        raise ConfigurationError(
            f"database URL {shown!r} names no database; expected postgresql://user:password@host:5432/dbname")
    taken = {name: options.pop(name) for name in extras if name in options}
    misplaced = sorted(name for name in _REPLICA_OPTIONS if name in options)
    if misplaced:
        raise ConfigurationError(
            f"database URL {shown!r} sets {', '.join(misplaced)}, which only a replica's URL takes (in "
            "ORM_KIT_REPLICA_URLS or connect(replicas=[...])); take it off this URL")
    pool = _pool_settings(options, pooled, shown)
    pgbouncer = _pgbouncer(options, shown)
    options.setdefault("connect_timeout", 10)
    return ParsedURL(url, shown, family, database, options, pool, pgbouncer, taken)


def _require_psycopg(shown: str) -> None:
    try:
        import psycopg  # noqa: F401  (only checking that the driver is there)
    except ImportError:
        raise DriverMissingError(
            f"database URL {shown!r} needs the psycopg driver, which is not installed "
            "(install it with: pip install 'orm-kit[postgres]')"
        ) from None


def pool_name(parsed: ParsedURL) -> str:
    """How messages name the pool of ``parsed``: ``user@host:port/database``, never the password."""
    driver = parsed.driver
    where = f"{driver.get('host', 'localhost')}" + (f":{driver['port']}" if driver.get("port") else "")
    return f"{driver['user']}@{where}/{parsed.database}" if driver.get("user") else f"{where}/{parsed.database}"


def database_arguments(parsed: ParsedURL, pool: PoolSettings | None = None) -> dict[str, Any]:
    """The keyword arguments a PostgreSQL-family database class of orm-kit takes for ``parsed``.

    ``pool`` (from :func:`orm_kit.connect`) applies when the URL itself asks for no pool settings.
    """
    _require_psycopg(parsed.shown)
    arguments: dict[str, Any] = {"prefer_psycopg3": True, **parsed.driver}
    settings = parsed.pool or pool
    if settings is not None:
        arguments.update(pool_name=pool_name(parsed), max_connections=settings.max_connections,
                         timeout=settings.timeout, stale_timeout=settings.stale_timeout)
    return arguments


def _server(parsed: ParsedURL, pool: PoolSettings | None) -> peewee.PostgresqlDatabase:
    arguments = database_arguments(parsed, pool)
    pooled = "pool_name" in arguments
    db: peewee.PostgresqlDatabase
    if parsed.family == "cockroach":
        db = (PooledCockroachDatabase if pooled else CockroachDatabase)(parsed.database, **arguments)
    else:
        db = (PooledPostgresDatabase if pooled else PostgresDatabase)(parsed.database, **arguments)
    mark_pooler(db, parsed)
    return db


def mark_pooler(db: peewee.Database, parsed: ParsedURL) -> None:
    """Record on ``db`` which PgBouncer mode its URL names (read by :func:`orm_kit.dialect.transaction_pooled`)."""
    db.orm_kit_pgbouncer = parsed.pgbouncer  # type: ignore[attr-defined]  # orm-kit's own attribute


@unchained
def check_connection(db: peewee.Database, url: str) -> None:
    """Open ``db``'s connection, or raise :class:`DatabaseUnavailableError` naming ``url`` without its password."""
    try:
        db.connect(reuse_if_open=True)
    except (peewee.PeeweeException, OSError, ValueError, TypeError) as exc:
        reason = scrub(first_line(exc, typed=False), url)
        free = _free_bytes(db) if is_sqlite(db) else None
        if free is not None and free < _SQLITE_ROOM:
            # SQLite says "disk I/O error" when it cannot even create the WAL index (-shm) of a full disk.
            raise DiskFullError(f"cannot open database {shown_url(url)}: {reason}: the disk holding it is full "
                                f"({free:,} bytes free); free space on that disk, then try again") from None
        hint = ("check that the folder exists and is writable" if is_sqlite(db)
                else "check that the server is running and the URL, user and password are right")
        raise DatabaseUnavailableError(f"cannot open database {shown_url(url)}: {reason} ({hint})") from None


_SQLITE_ROOM = 256 * 1024  # what opening a SQLite database in WAL mode may need: its -shm index, a few pages


def _free_bytes(db: peewee.Database) -> int | None:
    """Bytes free on the filesystem holding ``db``'s file (None for an in-memory database or a missing folder)."""
    folder = os.path.dirname(os.path.abspath(str(db.database)))
    if str(db.database) in ("", ":memory:") or not os.path.isdir(folder):
        return None
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for a server's URL or an in-memory database."""
    parsed = parse_url(url)
    if parsed.family != "sqlite" or parsed.database in ("", ":memory:"):
        return None
    return Path(parsed.database)


@unchained
def open_database(url: str, *, connect: bool = True, must_exist: bool = False,
                  pool: PoolSettings | None = None) -> peewee.Database:
    """A peewee database for ``url``; with ``connect`` (the default) the connection is opened and checked.

    With ``must_exist`` a SQLite file that is not there is refused instead of created (for commands that
    only read or change an existing database: a mistyped path must not leave an empty database behind).
    ``pool`` makes a PostgreSQL or CockroachDB database pooled (a ``+pool`` URL's own settings win).

    Raises :class:`ConfigurationError` for an unknown scheme or a URL without a database name,
    :class:`DriverMissingError` when the driver is not installed, and :class:`DatabaseUnavailableError`
    when the server cannot be reached. Every message shows the URL with its password masked.
    """
    parsed = parse_url(url)
    db: peewee.Database
    if pool is not None and parsed.family == "sqlite":
        raise ConfigurationError(f"a connection pool is for PostgreSQL and CockroachDB, not {parsed.shown!r} "
                                 "(SQLite opens a file: there is no connection to save)")
    if parsed.family == "sqlite":
        path = parsed.database
        if must_exist and path != ":memory:" and not os.path.exists(path):
            raise DatabaseUnavailableError(
                f"database file {path!r} does not exist (from {parsed.shown!r}): check the path, or run "
                "`orm-kit migrate` to create it")
        db = _sqlite(path, dict(parsed.driver), parsed.shown)
    else:
        db = _server(parsed, pool)
    echo_from_environment(db)  # ORM_KIT_ECHO=1: every statement with its duration, to stderr
    if connect:
        check_connection(db, url)
    return db
