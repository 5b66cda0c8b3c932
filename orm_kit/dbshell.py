"""The database's own command-line client on a database URL: psql or sqlite3 (``orm-kit dbshell``).

    from orm_kit.dbshell import client, run_client
    code = run_client("postgresql://app:s3cret@db:5432/platform", ["-c", "SELECT 1"])   # psql's exit code
    with client(url) as command:           # what would run: command.argv, command.env
        ...

The password never reaches the client's command line (which every user of the machine can read in
``ps``): psql gets the URL without it, and the password in a temporary password file (``PGPASSFILE``,
mode 0600, removed when the client exits), never in ``PGPASSWORD`` either (which ``ps e`` shows to the
same user). A ``PGPASSWORD`` in the environment is dropped, so the URL's password is the one used.
The client comes from ``PATH``; a missing one is a :class:`~orm_kit.errors.ClientMissingError` saying
how to install it. Ctrl-C goes to the client (it cancels the running query), not to orm-kit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from orm_kit import dialect
from orm_kit._shown import shown
from orm_kit.db import open_database, redact_url
from orm_kit.errors import ClientMissingError, ConfigurationError

__all__ = ["ClientCommand", "client", "run_client"]

_INSTALL = {
    "psql": "psql (the PostgreSQL client) is not installed or not on PATH: install it (Debian/Ubuntu: apt-get "
            "install postgresql-client; macOS: brew install libpq) and run orm-kit dbshell again",
    "sqlite3": "sqlite3 (the SQLite command-line shell) is not installed or not on PATH: install it (Debian/Ubuntu: "
               "apt-get install sqlite3; macOS: it comes with the system) and run orm-kit dbshell again",
}
_PASSWORD_KEYS = frozenset({"password", "passwd"})


@dataclass(frozen=True)
class ClientCommand:
    """The client to run: its command line (no password) and its whole environment."""

    argv: list[str]
    env: dict[str, str]


def _find(program: str, env: dict[str, str]) -> str:
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise ClientMissingError(_INSTALL[program])
    return found


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def _postgres_target(url: str) -> tuple[str, str | None]:
    """The URL without its password (for psql's command line), and the password."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    query = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in query:
        if key.lower() in _PASSWORD_KEYS:
            password = value
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1]
    user = netloc[0].split(":", 1)[0] if len(netloc) == 2 else ""
    kept = urlencode([(k, v) for k, v in query if k.lower() not in _PASSWORD_KEYS])
    scheme = "postgresql"  # libpq knows postgres:// too; one spelling keeps the command line plain
    return urlunsplit((scheme, f"{user}@{host}" if user else host, parts.path, kept, "")), password


@contextlib.contextmanager
def client(url: str, args: Sequence[str] = (), *, environ: dict[str, str] | None = None) -> Iterator[ClientCommand]:
    """The client command for ``url`` (extra ``args`` appended); any password file lives as long as the block."""
    env = dict(os.environ if environ is None else environ)
    held = next((arg for arg in args if "\x00" in arg), None)
    if held is not None:
        raise ConfigurationError(f"client argument {shown(held)} holds a NUL byte, which no command line can carry")
    db = open_database(url, connect=False, must_exist=True)
    if dialect.is_sqlite(db):
        path = str(db.database)
        if path == ":memory:":
            raise ConfigurationError(f"{redact_url(url)!r} is an in-memory SQLite database, which a client cannot "
                                     "open; name a file, e.g. sqlite:///orm_kit.db")
        yield ClientCommand([_find("sqlite3", env), path, *args], env)
        return
    target, password = _postgres_target(url)
    argv = [_find("psql", env), *args, target]
    env.pop("PGPASSWORD", None)
    if not password:
        yield ClientCommand(argv, env)
        return
    folder = Path(tempfile.mkdtemp(prefix="orm-kit-dbshell-"))  # mode 0700: only this user can look inside
    passfile = folder / "pgpass"
    try:
        descriptor = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"*:*:*:*:{_escape(password)}\n")  # any host, port, database, user: this client's only
        yield ClientCommand(argv, {**env, "PGPASSFILE": str(passfile)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_client(url: str, args: Sequence[str] = ()) -> int:
    """Run the database's client on ``url`` in this terminal until it exits; return its exit code."""
    with client(url, args) as command:
        previous = None
        with contextlib.suppress(ValueError):  # only the main thread may set signal handlers
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.run(command.argv, env=command.env, check=False).returncode  # noqa: S603
        except OSError as exc:  # E2BIG (arguments too long), a client that is not executable, ...
            raise ConfigurationError(f"cannot run {command.argv[0]}: {exc.strerror or exc}") from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
