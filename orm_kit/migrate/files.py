"""Migration files on disk: which there are, in what order, their checksums, and loading one.

    files = discover(Path("migrations"))        # [MigrationFile(1, "0001_initial", ...), ...]
    module = files[0].load_for("up")            # a fresh module defining up(migrator, db)

A migration is a file ``NNNN_slug.py`` defining ``up(migrator, db)`` and ``down(migrator, db)``: peewee's
``playhouse.migrations`` format, so the same files run under either runner. A module-level
``atomic = False`` runs it outside a transaction (for ``CREATE INDEX CONCURRENTLY`` and the like).
A file rewritten after release (same schema, a safer way there) names the checksums of the revisions it
replaces, with why, so databases that applied one of them see it as applied, not as edited:
``supersedes = {"4dded814...": "backfill moved after the commit, in batches"}`` (:func:`superseded`).
Files are found with peewee's ``[0-9]*.py`` glob; one that glob finds but that is not named
``NNNN_slug.py`` is :func:`misnamed` (peewee's runner would run it, orm-kit would not), which stops the
runner rather than being skipped in silence.

Each file belongs to an *app* (:data:`DEFAULT_APP` unless the caller names another): apps number their
files independently, and the history keys its rows by app and name (:mod:`orm_kit.migrate.apps`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from orm_kit.errors import MigrationError, MigrationRefusedError, first_line

__all__ = ["DEFAULT_APP", "MigrationFile", "checksum", "discover", "misnamed", "number_of", "suggested_name",
           "superseded", "syntax_error", "target_number"]

NAME = re.compile(r"^(\d+)_?\w*$")

#: The app of a migration nobody assigned to one, and of every history row written before apps existed:
#: until apps, a database had one folder of migrations, and in orm-kit that was the platform's.
DEFAULT_APP = "platform"


def checksum(path: Path) -> str:
    """sha256 of a migration file, line endings normalised (a CRLF checkout is not an edit)."""
    return _digest(path.read_bytes())


def _digest(source: bytes) -> str:
    return hashlib.sha256(source.replace(b"\r\n", b"\n")).hexdigest()


def target_number(target: str) -> int | None:
    """The migration number a target such as ``0003`` gives, or None: not ASCII digits, or too long to be one
    (``int()`` of 5,000 digits raises, and ``"²".isdigit()`` is true)."""
    return int(target) if target.isascii() and target.isdigit() and len(target) <= 18 else None


def number_of(name: str) -> int:
    """The number a migration name starts with (-1 for a name that has none)."""
    match = NAME.match(name)
    return int(match.group(1)) if match else -1


@dataclass(frozen=True)
class MigrationFile:
    """One ``NNNN_slug.py`` file: its number, name (the stem), path, checksum and the app it belongs to."""

    number: int
    name: str
    path: Path
    checksum: str
    app: str = DEFAULT_APP

    @functools.cached_property
    def source(self) -> bytes:
        """The file's bytes, read once (:func:`discover` keeps what it read for the checksum): the plan reads
        ``depends_on``, ``supersedes`` and syntax errors from them without opening the file again."""
        return self.path.read_bytes()

    def load(self) -> ModuleType:
        """Execute the file as a fresh module (never cached in sys.modules: names repeat across projects)."""
        spec = importlib.util.spec_from_file_location(f"orm_kit_migration_{self.app}_{self.name}", self.path)
        if spec is None or spec.loader is None:
            raise MigrationRefusedError(f"cannot load migration {str(self.path)!r}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - any error in a migration file is reported as a refusal
            raise MigrationRefusedError(
                f"cannot load migration {self.path.name}: {type(exc).__name__}: {exc} (fix the file; nothing ran)"
            ) from None
        return module

    def load_for(self, direction: str) -> ModuleType:
        """:meth:`load`, refusing a file that does not define ``direction`` ("up" or "down")."""
        module = self.load()
        if not callable(getattr(module, direction, None)):
            verb = "applied" if direction == "up" else "reverted"
            raise MigrationRefusedError(f"{self.name}.py defines no {direction}(migrator, db), so it cannot be "
                                        f"{verb} (add it; nothing ran)")
        return module


def superseded(f: MigrationFile) -> dict[str, str]:
    """The checksums of earlier revisions ``f`` replaces (its ``supersedes``), each with why; read, never run."""
    source = f.source
    if b"supersedes" not in source:
        return {}
    expected = ('expected a literal dict like supersedes = {"<sha256 of the earlier file>": "what changed and why '
                'the schema it makes is the same"}')
    try:
        tree = ast.parse(source, str(f.path))
    except (SyntaxError, ValueError):
        return {}  # reported as the file's syntax error, where status looks for one
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "supersedes"
                                                     for t in node.targets)):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise MigrationError(f"{f.path.name}: supersedes is not a literal; {expected}") from None
        if not (isinstance(value, dict) and all(
                isinstance(k, str) and re.fullmatch(r"[0-9a-f]{64}", k) and isinstance(v, str) and v.strip()
                for k, v in value.items())):
            raise MigrationError(f"{f.path.name}: supersedes is {str(value)[:120]!r}; {expected}")
        return value
    return {}


def syntax_error(f: MigrationFile) -> str | None:
    """Why ``f`` does not compile (``SyntaxError: ... (line 12)``), or None: checked without running it."""
    try:
        compile(f.source, str(f.path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return f"{type(exc).__name__}: {detail}{where}"
    except OSError as exc:
        return first_line(exc)
    return None


def discover(directory: Path, app: str = DEFAULT_APP) -> list[MigrationFile]:
    """The migration files in ``directory`` (of ``app``), by number then name (peewee's ``[0-9]*.py`` glob)."""
    found = []
    for path in _candidates(directory):
        match = NAME.match(path.stem)
        if match is None:
            continue  # reported by misnamed(), as a problem that stops the runner
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise MigrationError(
                f"cannot read migration {path.name}: {first_line(exc)} (a dangling symlink or a permission? fix or "
                "remove the file)") from None
        f = MigrationFile(int(match.group(1)), path.stem, path, _digest(source), app)
        f.__dict__["source"] = source  # the cached_property's slot: the file is read once per plan
        found.append(f)
    return sorted(found, key=lambda f: (f.number, f.name))


def misnamed(directory: Path) -> list[Path]:
    """Files peewee's runner would run (``[0-9]*.py``) that are not named ``NNNN_slug.py``, so orm-kit would not."""
    return [path for path in _candidates(directory) if NAME.match(path.stem) is None]


def suggested_name(path: Path) -> str:
    """A ``NNNN_slug.py`` name for a misnamed file (``0004-add-index.py`` -> ``0004_add_index.py``)."""
    digits = re.match(r"\d+", path.stem)
    slug = re.sub(r"\W+", "_", path.stem[digits.end() if digits else 0:]).strip("_") or "name"
    return f"{digits.group(0) if digits else '0000'}_{slug}.py"


def _candidates(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {str(directory)!r} does not exist "
                             "(check the path given to --migrations, or `migrations` in [tool.orm-kit] of "
                             "pyproject.toml; `orm-kit migrate make` creates it)")
    return sorted(directory.glob("[0-9]*.py"))
