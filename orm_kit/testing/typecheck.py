"""Whether what mypy sees of some models is what they are at run time: every field, ``<fk>_id`` and backref.

    from orm_kit.testing.typecheck import type_problems

    def test_mypy_sees_our_models_as_they_are():
        assert type_problems(MODELS, config_file=ROOT / "setup.cfg") == []

A field's type comes from the field itself (``CharField[str]``, ``choice_field(TIERS)``'s
``CharField[Tier]``), but what peewee adds to a class at run time mypy cannot see, so it is declared by
hand and can drift: the ``<fk>_id`` attributes and the backrefs a model declares under
``if TYPE_CHECKING:``, the annotation a ``"self"`` foreign key needs, an implicit ``id``, and the typed
accessor (:func:`orm_kit.relations.backref`) an app gives for a backref it adds to a model it does not own
(``flags_of = backref(FeatureFlag, FeatureFlag.service)`` for ``service.feature_flags``). This module
writes, from the models as they are at run time, a file of ``assert_type`` lines (:func:`probe_source`)
and runs ``mypy --strict`` on it (:func:`type_problems`): each line mypy rejects is a problem naming the
model and attribute, what mypy said and what to declare. ``models`` are one app's: a backref between two
of them is declared on the model it is added to, one onto a model outside them needs an accessor (a
problem found without mypy when there is none). Fields of types orm-kit does not know are left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import peewee

from orm_kit.relations import Backref

__all__ = ["Probe", "probe_source", "type_problems"]

# Field classes by what they read as (checked in order: a subclass before its base).
_READS: tuple[tuple[type[peewee.Field], str], ...] = (
    (peewee.UUIDField, "uuid.UUID"),
    (peewee.DateTimeField, "datetime.datetime"),
    (peewee.DateField, "datetime.date"),
    (peewee.TimeField, "datetime.time"),
    (peewee.BooleanField, "bool"),
    (peewee.IntegerField, "int"),
    (peewee.FloatField, "float"),
    (peewee.DecimalField, "decimal.Decimal"),
    (peewee.CharField, "str"),
    (peewee.TextField, "str"),
    (peewee.BlobField, "bytes"),
)
_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*)$")


@dataclass
class Probe:
    """The source mypy checks, what each of its lines asserts, and the problems found without mypy."""

    source: str
    lines: dict[int, tuple[str, str]] = field(default_factory=dict)  # line -> (what, the fix)
    problems: list[str] = field(default_factory=list)


class _Writer:
    def __init__(self, models: Sequence[type[peewee.Model]]) -> None:
        self.models = list(models)
        self.names: dict[type[peewee.Model], str] = {}
        self.imports: list[str] = []
        self.body: list[tuple[str, str, str]] = []  # (line, what, the fix)
        self.problems: list[str] = []

    def name(self, model: type[peewee.Model]) -> str:
        """A name the probe imports ``model`` as."""
        if model not in self.names:
            alias = f"_m{len(self.names)}"
            self.names[model] = alias
            self.imports.append(f"from {model.__module__} import {model.__qualname__} as {alias}")
        return self.names[model]

    def reads(self, field: peewee.Field) -> str | None:
        """What reading ``field`` gives, as a type (None for a field type orm-kit does not know)."""
        if isinstance(field, peewee.ForeignKeyField):
            typ: str | None = self.name(field.rel_model)
        elif field.choices and all(isinstance(value, str) for value, _ in field.choices):
            typ = "Literal[" + ", ".join(repr(value) for value, _ in field.choices) + "]"
        else:
            typ = next((name for kind, name in _READS if isinstance(field, kind)), None)
        return None if typ is None else typ + (" | None" if field.null else "")

    def key(self, field: peewee.ForeignKeyField[object]) -> str | None:
        """What a foreign key's ``<name>_id`` holds: the key it points at (through keys that are foreign keys)."""
        target: peewee.Field = field.rel_field
        while isinstance(target, peewee.ForeignKeyField):
            target = target.rel_field
        typ = next((name for kind, name in _READS if isinstance(target, kind)), None)
        return None if typ is None else typ + (" | None" if field.null else "")

    @staticmethod
    def fix(model: type[peewee.Model], f: peewee.Field) -> str:
        """What to declare so that mypy reads ``f`` as the model holds it."""
        if isinstance(f, peewee.ForeignKeyField) and f.rel_model is model:
            reads = model.__name__ + (" | None" if f.null else "")
            return (f"annotate it: `{f.name}: peewee.ForeignKeyField[{reads}] = peewee.ForeignKeyField(\"self\", ...)` "
                    "(to mypy, \"self\" is any model)")
        if f.name == "id" and isinstance(f, peewee.AutoField):
            return "declare `id = peewee.AutoField()` (peewee adds it to a model without a key; mypy cannot see that)"
        if f.choices:
            return "give choice_field the values of a Literal: `KINDS: tuple[Kind, ...] = get_args(Kind)`"
        return "declare it with a field class mypy knows (peewee's, UTCDateTimeField, choice_field)"

    def expect(self, expression: str, typ: str, what: str, fix: str) -> None:
        self.body.append((f"    assert_type({expression}, {typ})", what, fix))

    def model(self, model: type[peewee.Model]) -> None:
        row = "row"
        self.body.append((f"\n\ndef reads_{self.name(model).lstrip('_')}({row}: {self.name(model)}) -> None:", "", ""))
        title = model.__name__
        for f in model._meta.sorted_fields:
            typ = self.reads(f)
            if typ is None:
                continue
            self.expect(f"{row}.{f.name}", typ, f"{title}.{f.name}", self.fix(model, f))
            if isinstance(f, peewee.ForeignKeyField):
                key = self.key(f)
                if key is not None:
                    self.expect(f"{row}.{f.object_id_name}", key, f"{title}.{f.object_id_name}",
                                f"declare `{f.object_id_name}: {key}` under `if TYPE_CHECKING:` in {title}")
        for fk, child in model._meta.backrefs.items():
            if child in self.models and fk.backref and fk.backref != "+":
                self.expect(f"{row}.{fk.backref}", f"peewee.ModelSelect[{self.name(child)}]", f"{title}.{fk.backref}",
                            f"declare `{fk.backref}: peewee.ModelSelect[{child.__name__}]` under `if TYPE_CHECKING:` "
                            f"in {title} (the backref of {child.__name__}.{fk.name})")

    def accessors(self, modules: Iterable[ModuleType]) -> None:
        """Each backref a model adds to a model outside ``models`` needs a typed accessor in the models' modules."""
        found: dict[int, tuple[str, str]] = {}
        for module in modules:
            for attribute, value in vars(module).items():
                if isinstance(value, Backref) and not attribute.startswith("_"):
                    found.setdefault(id(value.field), (module.__name__, attribute))
        for model in self.models:
            for fk in model._meta.refs:
                target = fk.rel_model
                if target in self.models or not fk.backref or fk.backref == "+":
                    continue
                what = f"{target.__name__}.{fk.backref} (the backref {model.__name__}.{fk.name} adds)"
                if id(fk) not in found:
                    self.problems.append(
                        f"{what}: mypy cannot see an attribute added from outside {target.__name__}'s class; give it a "
                        f"typed accessor beside {model.__name__}: `{fk.backref}_of = backref({model.__name__}, "
                        f"{model.__name__}.{fk.name})` (orm_kit.relations.backref)")
                    continue
                home, attribute = found[id(fk)]
                alias = f"_a{len(self.imports)}"
                self.imports.append(f"from {home} import {attribute} as {alias}")
                self.body.append((f"\n\ndef accessor{alias}() -> None:", "", ""))
                self.expect(alias, f"Backref[{self.name(target)}, {self.name(model)}]", f"{home}.{attribute}",
                            f"make it with backref({model.__name__}, {model.__name__}.{fk.name})")


def probe_source(models: Sequence[type[peewee.Model]], *, modules: Iterable[ModuleType] | None = None) -> Probe:
    """The ``assert_type`` lines mypy must accept for ``models`` as they are now (see the module docstring).

    Typed accessors are looked for in ``modules`` (default: the modules the models are defined in).
    """
    writer = _Writer(models)
    for model in writer.models:
        writer.model(model)
    if modules is None:
        modules = [m for m in dict.fromkeys(sys.modules.get(model.__module__) for model in writer.models) if m]
    writer.accessors(modules)
    head = ["from __future__ import annotations", "", "import datetime", "import decimal", "import uuid",
            "from typing import Literal, assert_type", "", "import peewee", "",
            "from orm_kit.relations import Backref", *writer.imports]
    probe = Probe("", problems=writer.problems)
    lines = list(head)
    for text, what, fix in writer.body:
        lines.extend(text.split("\n"))
        if what:
            probe.lines[len(lines)] = (what, fix)
    probe.source = "\n".join(lines) + "\n"
    return probe


def type_problems(models: Sequence[type[peewee.Model]], *, config_file: Path | None = None,
                  mypy_path: Sequence[Path] = (), modules: Iterable[ModuleType] | None = None,
                  env: Mapping[str, str] | None = None) -> list[str]:
    """Every place where what ``mypy --strict`` sees of ``models`` is not what they are (empty: none).

    ``config_file`` is the project's mypy configuration (its ``mypy_path`` and plugins); mypy runs in
    its folder. ``mypy_path`` adds folders to import the models' modules from.
    """
    probe = probe_source(models, modules=modules)
    problems = list(probe.problems)
    with tempfile.TemporaryDirectory(prefix="orm-kit-typecheck-") as folder:
        path = Path(folder) / "orm_kit_type_probe.py"
        path.write_text(probe.source)
        command = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--no-color-output",
                   "--cache-dir", str(Path(folder) / "cache"), str(path)]
        if config_file is not None:
            command[3:3] = ["--config-file", str(config_file)]
        environ = dict(os.environ if env is None else env)
        if mypy_path:
            environ["MYPYPATH"] = os.pathsep.join([*map(str, mypy_path), *filter(None, [environ.get("MYPYPATH")])])
        cwd = config_file.parent if config_file is not None else None
        # mypy, run by this interpreter on a file written here
        result = subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, check=False)  # noqa: S603
        said: dict[int, str] = {}  # per probe line, what mypy said (a missing attribute over the Any it gives)
        for line in result.stdout.splitlines():
            match = _ERROR.match(line)
            if match is None:
                continue
            number = int(match["line"])
            if Path(match["path"]).name != path.name or number not in probe.lines:
                problems.append(f"mypy: {line}")  # not one of the probe's lines: the models' own code, say
            elif number not in said or said[number].endswith("[assert-type]"):
                said[number] = match["message"]
        for number, message in sorted(said.items()):
            what, fix = probe.lines[number]
            problems.append(f"{what}: {message}; {fix}")
        if result.returncode not in (0, 1) or (result.returncode == 1 and len(problems) == len(probe.problems)):
            problems.append(f"mypy failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return problems
