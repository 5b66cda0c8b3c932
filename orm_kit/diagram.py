"""An entity-relationship diagram of peewee models: Mermaid ``erDiagram`` or Graphviz dot.

    from orm_kit.diagram import dot, mermaid, relationships
    print(mermaid(MODELS))                  # paste into Markdown: GitHub and GitLab draw it
    print(dot(MODELS))                      # dot -Tsvg schema.dot > schema.svg
    for rel in relationships(MODELS):
        print(rel.describe())               # owner: service -> team, many-to-one, on delete RESTRICT

Every table with its columns (type, PK/FK/UK, nullable), every foreign key as a relationship with its
cardinality and ``ON DELETE`` action, and every many-to-many through a join model as one more, dashed
relationship between the two sides. The kinds:

* **many-to-one**: a foreign key (``service.owner_id -> team``);
* **one-to-one**: a unique foreign key, or one that is the primary key (``service_source_config.service_id``);
* **self-referential**: either of those pointing at its own table (``team.parent_id``, ``deployment.rollback_of_id``);
* **many-to-many** through a join model: a table with two foreign keys that are unique together
  (``service_api_consumer``; ``service_dependency`` joins ``service`` to itself).

The crow's feet say how many rows: the parent end ``||`` (exactly one) for a NOT NULL key, ``|o`` (zero or
one) for a nullable one; the child end ``o{`` (zero or more) or, one-to-one, ``o|`` (zero or one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import peewee

from orm_kit.errors import ConfigurationError

__all__ = ["FORMATS", "Column", "Relationship", "Table", "dot", "mermaid", "relationships", "render", "tables"]

FORMATS = ("mermaid", "dot")

_TYPES = {"auto": "int", "bigauto": "bigint", "datetime": "timestamp", "timestamptz": "timestamptz"}


@dataclass(frozen=True)
class Column:
    """One column: its name, SQL type, keys (PK, FK, UK) and whether it may be NULL."""

    name: str
    type: str
    keys: tuple[str, ...]
    nullable: bool


@dataclass(frozen=True)
class Table:
    """One model's table and its columns, in the model's field order."""

    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Relationship:
    """One relationship: ``child`` refers to ``parent`` (for many-to-many, the two sides of ``through``)."""

    kind: str  # "many-to-one", "one-to-one" or "many-to-many"
    child: str
    parent: str
    name: str  # the foreign key's field (for many-to-many: the join table)
    nullable: bool
    on_delete: str
    through: str | None = None
    column: str | None = None  # the foreign key's column, and the parent's column it references
    references: str | None = None

    @property
    def self_referential(self) -> bool:
        """True when the table refers to itself."""
        return self.child == self.parent

    @property
    def cardinality(self) -> str:
        """The kind, with "self-referential" in front when it is."""
        return f"self-referential {self.kind}" if self.self_referential else self.kind

    def label(self) -> str:
        """The words on the diagram's line: field or join table, kind, on delete action(s)."""
        if self.through is not None:
            return f"{self.cardinality} through {self.through}, on delete {self.on_delete}"
        return f"{self.name}: {self.cardinality}, on delete {self.on_delete}"

    def describe(self) -> str:
        """One line for people: ``owner: service -> team, many-to-one, on delete RESTRICT``."""
        if self.through is not None:
            return f"{self.child} <-> {self.parent}: {self.label()}"
        return f"{self.name}: {self.child} -> {self.parent}, {self.cardinality}, on delete {self.on_delete}"


def _table(model: type[peewee.Model]) -> str:
    name: str = model._meta.table_name
    return name


def _on_delete(fk: peewee.ForeignKeyField) -> str:
    return (fk.on_delete or "NO ACTION").upper()


def _unique_sets(model: type[peewee.Model]) -> list[frozenset[str]]:
    """Column-name sets that are unique in ``model`` (unique fields, unique indexes, a composite key)."""
    found = [frozenset({f.column_name}) for f in model._meta.sorted_fields if f.unique or f.primary_key]
    for index in model._meta.fields_to_index():
        if index._unique:
            found.append(frozenset(getattr(e, "column_name", str(e)) for e in index._expressions))
    key = model._meta.primary_key
    if isinstance(key, peewee.CompositeKey):
        found.append(frozenset(model._meta.fields[n].column_name for n in key.field_names))
    return found


def tables(models: Sequence[type[peewee.Model]]) -> list[Table]:
    """Each model's table with its columns."""
    result = []
    for model in models:
        unique = {next(iter(s)) for s in _unique_sets(model) if len(s) == 1}
        columns = []
        for field in model._meta.sorted_fields:
            keys = []
            if field.primary_key:
                keys.append("PK")
            if isinstance(field, peewee.ForeignKeyField):
                keys.append("FK")
            if field.column_name in unique and not field.primary_key:
                keys.append("UK")
            kind = str(field.field_type).lower()
            columns.append(Column(field.column_name, _TYPES.get(kind, kind), tuple(keys), bool(field.null)))
        result.append(Table(_table(model), tuple(columns)))
    return result


def relationships(models: Sequence[type[peewee.Model]]) -> list[Relationship]:
    """Every foreign key of ``models`` as a relationship, then every many-to-many through a join model."""
    found: list[Relationship] = []
    joins: list[Relationship] = []
    for model in models:
        unique = _unique_sets(model)
        fks = [f for f in model._meta.sorted_fields if isinstance(f, peewee.ForeignKeyField)]
        for fk in fks:
            one = fk.primary_key or frozenset({fk.column_name}) in unique
            found.append(Relationship("one-to-one" if one else "many-to-one", _table(model), _table(fk.rel_model),
                                      fk.name, bool(fk.null), _on_delete(fk), column=fk.column_name,
                                      references=fk.rel_field.column_name))
        for i, left in enumerate(fks):
            for right in fks[i + 1:]:
                if frozenset({left.column_name, right.column_name}) in unique:
                    joins.append(Relationship(
                        "many-to-many", _table(left.rel_model), _table(right.rel_model), _table(model),
                        left.null or right.null, f"{left.name} {_on_delete(left)}, {right.name} {_on_delete(right)}",
                        through=_table(model)))
    return found + joins


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def mermaid(models: Sequence[type[peewee.Model]]) -> str:
    """The models as a Mermaid ``erDiagram`` (tables with columns, then relationships)."""
    lines = ["erDiagram"]
    for table in tables(models):
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = f" {', '.join(column.keys)}" if column.keys else ""
            note = ' "nullable"' if column.nullable else ""
            lines.append(f"        {column.type} {column.name}{keys}{note}")
        lines.append("    }")
    for rel in relationships(models):
        if rel.through is not None:
            line = "}o..o{"
        else:
            parent = "|o" if rel.nullable else "||"
            child = "o|" if rel.kind == "one-to-one" else "o{"
            line = f"{parent}--{child}"
        lines.append(f"    {rel.parent} {line} {rel.child} : {_quote(rel.label())}")
    return "\n".join(lines) + "\n"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dot(models: Sequence[type[peewee.Model]]) -> str:
    """The models as a Graphviz digraph: a table node per model, an edge per relationship (child -> parent)."""
    lines = [
        "digraph schema {",
        '    graph [rankdir=LR, fontname="Helvetica"];',
        '    node [shape=plain, fontname="Helvetica", fontsize=10];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for table in tables(models):
        rows = [f'<tr><td bgcolor="#dddddd" colspan="2"><b>{_html(table.name)}</b></td></tr>']
        for column in table.columns:
            keys = " ".join(column.keys)
            null = " null" if column.nullable else ""
            rows.append(f'<tr><td align="left">{_html(column.name)}</td>'
                        f'<td align="left">{_html(column.type)}{null} {keys}</td></tr>')
        body = "".join(rows)
        lines.append(f'    "{table.name}" [label=<<table border="0" cellborder="1" cellspacing="0">{body}</table>>];')
    for rel in relationships(models):
        label = rel.label().replace('"', "'")
        if rel.through is not None:
            lines.append(f'    "{rel.child}" -> "{rel.parent}" [label="{label}", style=dashed, dir=both, '
                         "arrowhead=crow, arrowtail=crow];")
            continue
        head = "teeodot" if rel.nullable else "teetee"
        tail = "teeodot" if rel.kind == "one-to-one" else "crowodot"
        lines.append(f'    "{rel.child}" -> "{rel.parent}" [label="{label}", dir=both, arrowhead={head}, '
                     f"arrowtail={tail}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(models: Sequence[type[peewee.Model]], fmt: str = "mermaid") -> str:
    """The diagram in ``fmt`` ("mermaid" or "dot")."""
    if fmt == "dot":
        return dot(models)
    if fmt == "mermaid":
        return mermaid(models)
    raise ConfigurationError(f"diagram format {fmt!r} is not one of {', '.join(FORMATS)}")
