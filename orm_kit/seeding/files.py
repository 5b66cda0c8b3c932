"""Seed files on disk: sets, their checksums, and rows read with the line each value came from.

A seed folder holds *sets*: each sub-folder is a set named after it (its ``*.yaml`` files, in name
order), and each ``*.yaml`` file at the top is a set named after its stem. A file maps table names to
lists of rows; a row maps field names to values::

    # seed_data/reference/teams.yaml
    team:
      - name: platform
        email: platform@example.com
      - name: payments
        parent: platform          # another row, by its natural key

    sets = discover_sets(Path("seed_data"))          # {"reference": SeedSet(...), ...}
    rows = read_rows(sets["reference"].files[0])     # [SeedRow(table="team", line=3, ...), ...]

The document is *composed* (not just loaded) so that every row and every value keeps its line number
for error messages. Anything malformed is a :class:`~orm_kit.errors.SeedError` naming the file and line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orm_kit.errors import SeedError

__all__ = ["SeedRow", "SeedSet", "discover_sets", "read_rows"]

# The C parser is several times faster on large files; both keep node marks (line numbers).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class SeedSet:
    """A named group of seed files, loaded, tracked and removed together."""

    name: str
    files: tuple[Path, ...]
    checksum: str


@dataclass(frozen=True)
class SeedRow:
    """One row of a seed file: its table, its values, and the line of the row and of each value."""

    path: str
    line: int
    table: str
    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, name: str | None) -> int:
        """The line of field ``name`` in the file, or the row's own line when the field is absent."""
        return self.lines.get(name, self.line) if name else self.line


def _checksum(files: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def discover_sets(directory: Path) -> dict[str, SeedSet]:
    """The sets in ``directory``: each sub-folder with ``*.yaml`` files, and each top-level ``*.yaml`` file."""
    if not directory.is_dir():
        raise SeedError(f"seed folder {str(directory)!r} does not exist (pass --seeds DIR, or create it)")
    found: dict[str, SeedSet] = {}
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            files = tuple(sorted(p for p in entry.glob("*.yaml") if p.is_file()))
            if files:
                found[entry.name] = SeedSet(entry.name, files, _checksum(files, directory))
        elif entry.suffix == ".yaml":
            found[entry.stem] = SeedSet(entry.stem, (entry,), _checksum((entry,), directory))
    return found


def read_rows(path: Path) -> list[SeedRow]:
    """Every row of one seed file, in file order, each with its line numbers."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"cannot read the file ({exc})", path=shown) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        return list(_rows(loader, root, shown))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise SeedError(f"is not valid YAML: {problem} (fix the syntax)", path=shown, line=line) from None
    except yaml.YAMLError as exc:
        raise SeedError(f"is not valid YAML: {exc}", path=shown) from None
    finally:
        loader.dispose()


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _rows(loader: Any, root: yaml.Node, shown: str) -> Iterable[SeedRow]:
    if not isinstance(root, yaml.MappingNode):
        raise SeedError("must map table names to lists of rows (like `team: [{name: payments}]`)",
                        path=shown, line=_line(root))
    for table_node, rows_node in root.value:
        table = _key(loader, table_node, shown)
        if isinstance(rows_node, yaml.ScalarNode) and _construct(loader, rows_node, shown, table) is None:
            continue  # `team:` with no rows yet
        if not isinstance(rows_node, yaml.SequenceNode):
            raise SeedError("must be a list of rows (each row starts with '- ')",
                            path=shown, line=_line(rows_node), table=table)
        for row_node in rows_node.value:
            if not isinstance(row_node, yaml.MappingNode):
                raise SeedError("each row must map field names to values (like `- name: payments`)",
                                path=shown, line=_line(row_node), table=table)
            values: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for field_node, value_node in row_node.value:
                name = _key(loader, field_node, shown)
                if name in values:
                    raise SeedError(f"is given twice in one row (also on line {lines[name]}); keep one",
                                    path=shown, line=_line(field_node), table=table, field=name)
                values[name] = _construct(loader, value_node, shown, table, name)
                lines[name] = _line(value_node)
            yield SeedRow(shown, _line(row_node), table, values, lines)


def _construct(loader: Any, node: yaml.Node, shown: str, table: str | None = None, name: str | None = None) -> Any:
    # YAML types a value by its look, and building it can fail: `2026-13-45` looks like a date, but
    # datetime refuses month 13 with a bare ValueError that names neither the file nor the field.
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SeedError(f"{getattr(node, 'value', '')!r} is not a valid value: {exc} (fix it, or quote it to "
                        "give text)", path=shown, line=_line(node), table=table, field=name) from None


def _key(loader: Any, node: yaml.Node, shown: str) -> str:
    value = _construct(loader, node, shown) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str) or not value:
        raise SeedError(f"a table or field name must be plain text (got {getattr(node, 'value', node)!r})",
                        path=shown, line=_line(node))
    return value
