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

A seed file is data from outside, so reading one is bounded before anything is built from it: a file
larger than :data:`MAX_FILE_BYTES` is refused unread, and the composed document must not nest deeper
than :data:`MAX_DEPTH` nor expand, through YAML aliases reused inside each other (a "billion laughs"
document: 481 bytes that stand for 10^9 values), to more than :data:`MAX_EXPANSION` times its own size.
Messages quote values through :func:`orm_kit._shown.shown`, never a whole ``repr()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orm_kit._shown import shown as _shown
from orm_kit.bounds import check_count
from orm_kit.errors import SeedError

__all__ = ["MAX_DEPTH", "MAX_EXPANSION", "MAX_FILE_BYTES", "SeedRow", "SeedSet", "discover_sets", "read_rows"]

#: The largest seed file read (bytes); ``read_rows(path, max_bytes=...)`` for another bound.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How deep a document may nest (a row is at depth 3; the rest is for structured values).
MAX_DEPTH = 64
#: Values a document may stand for through its aliases, per value written in it (plus a fixed allowance).
MAX_EXPANSION = 10
_EXPANSION_ALLOWANCE = 100_000

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
        try:
            with path.open("rb") as handle:  # in blocks: a set's files are never all in memory at once
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise SeedError(f"cannot read the file ({exc.strerror or type(exc).__name__})", path=str(path)) from None
        digest.update(b"\0")
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


def _read_text(path: Path, shown: str, max_bytes: int) -> str:
    too_big = (f"is larger than {max_bytes:,} bytes, the most a seed file may hold (split it into several files "
               "of the set)")
    try:
        with path.open("rb") as handle:
            # Read one byte past the bound rather than trust the size on disk: a FIFO, a device or a file
            # still being written has none that holds.
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SeedError(f"cannot read the file ({exc.strerror or type(exc).__name__})", path=shown) from None
    if len(data) > max_bytes:
        raise SeedError(too_big, path=shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SeedError(f"is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8",
                        path=shown, line=line) from None


def read_rows(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> list[SeedRow]:
    """Every row of one seed file, in file order, each with its line numbers."""
    shown = str(path)
    check_count(max_bytes, "max_bytes", low=0, high=2**62)
    text = _read_text(path, shown, max_bytes)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        _check_bounds(root, shown)
        return list(_rows(loader, root, shown))
    except RecursionError:  # the pure-Python parser composes recursively
        raise SeedError(f"nests deeper than {MAX_DEPTH} levels (flatten the data)", path=shown) from None
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


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_bounds(root: yaml.Node, shown: str) -> None:
    """Refuse a document that nests too deep, refers to itself, or expands through its aliases past the bound.

    Aliases make the composed document a graph whose nodes are shared: its size as values (what building
    it, validating it or quoting it would walk) is counted once per node, without expanding anything.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_.discard(key)
            if depth[key] > MAX_DEPTH:
                raise SeedError(f"nests deeper than {MAX_DEPTH} levels (flatten the data)",
                                path=shown, line=_line(node))
            continue
        if key in size:
            continue
        if key in open_:
            raise SeedError("refers to itself through a YAML alias (an anchor used inside its own value); "
                            "write the value out", path=shown, line=_line(node))
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)
        if len(open_) > MAX_DEPTH:
            raise SeedError(f"nests deeper than {MAX_DEPTH} levels (flatten the data)", path=shown, line=_line(node))
    written = len(size)
    allowed = MAX_EXPANSION * written + _EXPANSION_ALLOWANCE
    if size[id(root)] > allowed:
        worst = min((n for n in _walk(root) if size[id(n)] > allowed // MAX_EXPANSION), key=lambda n: size[id(n)])
        raise SeedError(f"stands for {size[id(root)]:,} values through YAML aliases reused inside each other, from "
                        f"{written:,} written (at most {MAX_EXPANSION}x, plus {_EXPANSION_ALLOWANCE:,}, are read: a "
                        "'billion laughs' document); write the values out, or reuse fewer anchors",
                        path=shown, line=_line(worst))


def _walk(root: yaml.Node) -> list[yaml.Node]:
    """Every node of the document once."""
    seen: dict[int, yaml.Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(_children(node))
    return list(seen.values())


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
        raise SeedError(f"{_node_shown(node)} is not a valid value: {str(exc)[:200]} (fix it, or quote it "
                        "to give text)", path=shown, line=_line(node), table=table, field=name) from None


def _key(loader: Any, node: yaml.Node, shown: str) -> str:
    value = _construct(loader, node, shown) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str) or not value:
        raise SeedError(f"a table or field name must be plain text (got {_node_shown(node)})",
                        path=shown, line=_line(node))
    return value


def _node_shown(node: yaml.Node) -> str:
    """A node as a message quotes it: a scalar's text (bounded), else what kind of value it is."""
    if isinstance(node, yaml.ScalarNode):
        return _shown(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
