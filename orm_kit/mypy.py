"""orm-kit's mypy plugin: every model's writes and every repository's filters typed field by field.

Enable it where mypy is configured (``setup.cfg`` / ``mypy.ini``, or ``pyproject.toml``)::

    [mypy]                                   # [tool.mypy]
    plugins = orm_kit.mypy                   # plugins = ["orm_kit.mypy"]

Then, for the platform's models and an application's own ``orm_kit.Model`` subclasses alike::

    services.create(nmae="checkout")         # Unexpected keyword argument "nmae" for "create" of "ServiceRepository"
    services.find(owner__nmae="payments")    # Unexpected keyword argument "owner__nmae" for "find" of ...
    Deployment.update(duration_seconds="x")  # Argument "duration_seconds" to "update" of "Deployment" has
                                             #   incompatible type "str"; expected "int | Node | None"
    Service(name=42)                         # Argument "name" to "Service" has incompatible type "int"; ...
    Repository(FeatureFlag, db).find(rollout_percent__gt="10")   # ... "find" of "Repository[FeatureFlag]" ...

Nothing is generated, so nothing can go stale: when mypy checks a call, the plugin reads the fields the
model declares (their types come from the fields themselves: ``CharField[str]``,
``ForeignKeyField[Team | None]``, ``choice_field(TIERS)``'s ``CharField[Tier]``) and gives the call a
signature with one keyword per field, or per ``field__op`` for filters
(:data:`orm_kit.query.filters.OPERATORS`; the text operators on text fields only):

* writes (a model's constructor; ``Model.create``, ``insert``, ``update``; ``Repository.create``,
  ``update``, ``update_where``'s changes): the field's type; a foreign key its model or that model's key
  (``owner=team``, ``owner=team.id``, and ``owner_id=`` the key); ``insert``, ``update`` and
  ``update_where`` an SQL expression (``peewee.Node``) too; ``Repository.update`` and ``update_where``
  never the primary key;
* filters (``find``, ``find_one``, ``query``, ``count``, ``exists``, ``page``, ``cursor_page``,
  ``delete_where``, ``update_where``): ``field``, ``field__eq``, ``field__ne`` the field's type (``None``
  only where the field is nullable); ``__lt``, ``__lte``, ``__gt``, ``__gte`` that type without
  ``None``; ``__in``, ``__not_in`` an iterable of it; ``__isnull`` a ``bool``; ``__contains``,
  ``__startswith`` a ``str``; narrowed to a repository's ``filter_fields`` when it lists them;
* names: ``order_by`` given as a literal (``"-created_at"``, ``["name", "-id"]``) names fields (of the
  repository's ``sort_fields`` when it lists them), and ``find_unique("name", value)`` a unique field,
  with ``value`` of that field's type.

What a call computes stays checked at run time only: ``**filters`` from a ``dict[str, object]``, an
``order_by`` held in a variable, a call inside generic code (``Repository[ModelT]``, model unknown), and
a model whose field types mypy has not inferred yet (the first pass over a module that uses its own
models before their class bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import mypy.types  # noqa: F401 - before mypy.maptype, whose import first runs into a cycle of mypy's own
from mypy.maptype import map_instance_to_supertype
from mypy.nodes import (
    ARG_NAMED_OPT,
    ARG_STAR2,
    AssignmentStmt,
    CallExpr,
    DictExpr,
    Expression,
    ListExpr,
    NameExpr,
    StrExpr,
    TupleExpr,
    TypeInfo,
    Var,
)
from mypy.plugin import CheckerPluginInterface, ClassDefContext, FunctionSigContext, MethodSigContext, Plugin
from mypy.typeops import make_simplified_union
from mypy.types import (
    AnyType,
    CallableType,
    FunctionLike,
    Instance,
    LiteralType,
    NoneType,
    ProperType,
    Type,
    TypedDictType,
    TypeOfAny,
    TypeType,
    UnionType,
    get_proper_type,
)

__all__ = ["TYPED_OPERATORS", "OrmKitPlugin", "plugin"]

MODEL = "orm_kit.model.Model"
REPOSITORY = "orm_kit.repository.Repository"
_FIELD = "peewee.Field"
_FOREIGN_KEY = "peewee.ForeignKeyField"
_TEXT = "peewee._StringField"
_AUTO = "peewee.AutoField"
_NODE = "peewee.Node"
_METADATA = "orm_kit"  # what a class body says, kept on the class (mypy caches it with the module)

# Where the methods the plugin types are defined: a model or repository that overrides one keeps its own.
_MODEL_DEFINERS = frozenset({MODEL, "peewee.Model"})
_MODEL_WRITES = {"create": False, "insert": True, "update": True}  # method: whether SQL expressions may be given
_FILTERING = frozenset({"find", "find_one", "query", "count", "exists", "page", "cursor_page", "delete_where",
                        "update_where"})
_REPOSITORY_METHODS = _FILTERING | {"create", "update", "find_unique"}
_ORDERED = frozenset({"find", "query", "page", "cursor_page"})

_COMPARISONS = ("lt", "lte", "gt", "gte")
_LISTS = ("in", "not_in")
_TEXT_OPERATORS = ("contains", "startswith")
#: Every operator the plugin types: orm_kit.query.filters.OPERATORS (a test holds them equal; importing the run-time
#: module here would load peewee and the toolkit into mypy for a tuple).
TYPED_OPERATORS = ("eq", "ne", *_COMPARISONS, *_LISTS, "isnull", *_TEXT_OPERATORS)
_DECLARED = ("primary_key", "unique")  # bool keyword arguments of a field kept from the class body
_NAMED = ("column_name", "object_id_name")  # str keyword arguments
_NARROWED = ("filter_fields", "sort_fields")  # a repository's literal lists of names


@dataclass(frozen=True)
class _Field:
    """One field of a model: its declared type (``CharField[str]``) and what its class body said of it."""

    name: str
    type: Instance
    declared: Mapping[str, object]

    def is_a(self, fullname: str) -> bool:
        return self.type.type.has_base(fullname)

    @property
    def value(self) -> Type:
        """What reading it gives: the ``_V`` of ``Field[_V]``."""
        base = next(b for b in self.type.type.mro if b.fullname == _FIELD)
        args = map_instance_to_supertype(self.type, base).args
        return args[0] if args else AnyType(TypeOfAny.special_form)

    @property
    def is_key(self) -> bool:
        return bool(self.declared.get("primary_key")) or self.is_a(_AUTO)


class OrmKitPlugin(Plugin):
    """Model constructors and writes, repository writes and filters, typed per model (see the module docstring)."""

    def _subclass(self, fullname: str, base: str) -> TypeInfo | None:
        symbol = self.lookup_fully_qualified(fullname)
        node = symbol.node if symbol is not None else None
        return node if isinstance(node, TypeInfo) and node.has_base(base) else None

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        """Keep what a model's or repository's class body says that types cannot carry (primary keys, names)."""
        if self._subclass(fullname, MODEL) is not None or self._subclass(fullname, REPOSITORY) is not None:
            return _record_class_body
        return None

    def get_function_signature_hook(self, fullname: str) -> Callable[[FunctionSigContext], FunctionLike] | None:
        """A model's constructor: one keyword per field."""
        info = self._subclass(fullname, MODEL)
        if info is None or info.fullname == MODEL or _defined_in(info, "__init__") not in _MODEL_DEFINERS:
            return None  # a model with an __init__ of its own keeps its signature
        return partial(_constructor, info)

    def get_method_signature_hook(self, fullname: str) -> Callable[[MethodSigContext], FunctionLike] | None:
        """A model's create/insert/update; a repository's writes, filters, orders and find_unique."""
        owner, _, method = fullname.rpartition(".")
        if method in _MODEL_WRITES:
            info = self._subclass(owner, MODEL)
            if info is not None and _defined_in(info, method) in _MODEL_DEFINERS:
                return partial(_model_write, method)
        if method in _REPOSITORY_METHODS:
            info = self._subclass(owner, REPOSITORY)
            if info is not None and _defined_in(info, method) == REPOSITORY:
                return partial(_repository_method, method)
        return None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point (``plugins = orm_kit.mypy``)."""
    return OrmKitPlugin


def _defined_in(info: TypeInfo, name: str) -> str | None:
    return next((base.fullname for base in info.mro if name in base.names), None)


# --- what a class body says (semantic analysis) -----------------------------------------------------

def _record_class_body(ctx: ClassDefContext) -> None:
    """Per field, the keyword arguments that types do not carry; per repository, its literal name lists."""
    fields: dict[str, dict[str, object]] = {}
    narrowed: dict[str, list[str]] = {}
    for statement in ctx.cls.defs.body:
        if not (isinstance(statement, AssignmentStmt) and len(statement.lvalues) == 1
                and isinstance(statement.lvalues[0], NameExpr)):
            continue
        name, value = statement.lvalues[0].name, statement.rvalue
        if isinstance(value, CallExpr):
            declared: dict[str, object] = {}
            for keyword, argument in zip(value.arg_names, value.args, strict=True):
                if keyword in _DECLARED and isinstance(argument, NameExpr):
                    declared[keyword] = argument.fullname == "builtins.True"
                elif keyword in _NAMED and isinstance(argument, StrExpr):
                    declared[keyword] = argument.value
            fields[name] = declared
        elif name in _NARROWED:
            names = _literal_strings(value)
            if names is not None:
                narrowed[name] = names
    # The order the class declares them in (mypy's cache keeps a class's names sorted, not in this order).
    ctx.cls.info.metadata[_METADATA] = {"fields": fields, "order": list(fields), **narrowed}


def _literal_strings(expression: Expression) -> list[str] | None:
    """The strings of a literal ``"a"``, ``("a", "b")`` or ``["a"]``, or None when it is anything else."""
    if isinstance(expression, StrExpr):
        return [expression.value]
    if isinstance(expression, TupleExpr | ListExpr) and all(isinstance(i, StrExpr) for i in expression.items):
        return [i.value for i in expression.items if isinstance(i, StrExpr)]
    return None


# --- a model's fields (type checking) ---------------------------------------------------------------

def _fields(info: TypeInfo) -> dict[str, _Field] | None:
    """The fields of model ``info``, its bases' too; None while mypy has not inferred their types yet."""
    found: dict[str, _Field] = {}
    for base in reversed(info.mro):
        if not base.has_base(MODEL) or base.fullname == MODEL:
            continue
        recorded = base.metadata.get(_METADATA, {})
        declared: Mapping[str, Mapping[str, object]] = recorded.get("fields", {})
        order: list[str] = recorded.get("order", [])
        for name in [*order, *sorted(n for n in base.names if n not in declared)]:
            symbol = base.names.get(name)
            node = symbol.node if symbol is not None else None
            if not isinstance(node, Var):
                continue
            if node.type is None:
                if name in declared:
                    return None  # not inferred yet: this call keeps the loose signature
                continue
            typ = get_proper_type(node.type)
            if isinstance(typ, Instance) and typ.type.has_base(_FIELD):
                found[name] = _Field(name, typ, declared.get(name, {}))
    return found


def _models_in(value: Type) -> list[Instance]:
    """The models a foreign key's value type names (``Team`` of ``Team | None``)."""
    proper = get_proper_type(value)
    items = proper.items if isinstance(proper, UnionType) else [proper]
    return [t for item in items if isinstance(t := get_proper_type(item), Instance) and t.type.has_base(MODEL)]


def _nullable(value: Type) -> bool:
    proper = get_proper_type(value)
    items = proper.items if isinstance(proper, UnionType) else [proper]
    return any(isinstance(get_proper_type(item), NoneType) for item in items)


def _without_none(value: Type) -> Type:
    proper = get_proper_type(value)
    if isinstance(proper, UnionType):
        return make_simplified_union([t for t in proper.items if not isinstance(get_proper_type(t), NoneType)])
    return value


def _key_type(model: Instance, seen: frozenset[str] = frozenset()) -> Type:
    """The type of ``model``'s primary key (a key that is itself a foreign key: the key it points at)."""
    fields = _fields(model.type) if model.type.fullname not in seen else None
    key = next((f for f in fields.values() if f.is_key), None) if fields else None
    if key is None:
        return AnyType(TypeOfAny.special_form)
    if key.is_a(_FOREIGN_KEY):
        targets = _models_in(key.value)
        return _key_type(targets[0], seen | {model.type.fullname}) if targets else AnyType(TypeOfAny.special_form)
    return key.value


def _written(field: _Field) -> Type:
    """What a write may give ``field``: its type; for a foreign key, its model or that model's key."""
    value = field.value
    targets = _models_in(value) if field.is_a(_FOREIGN_KEY) else []
    if not targets:
        return value
    return make_simplified_union([*targets, *(_key_type(m) for m in targets),
                                  *([NoneType()] if _nullable(value) else [])])


def _id_attribute(field: _Field) -> tuple[str, Type] | None:
    """The ``<name>_id`` attribute peewee gives a foreign key, and the key it holds."""
    if not field.is_a(_FOREIGN_KEY):
        return None
    named, column = field.declared.get("object_id_name"), field.declared.get("column_name")
    if isinstance(named, str):
        name = named
    elif isinstance(column, str) and column != field.name:
        name = column
    else:
        name = field.name + "_id"
    targets = _models_in(field.value)
    if not targets:
        return name, AnyType(TypeOfAny.special_form)
    return name, make_simplified_union([*(_key_type(m) for m in targets),
                                        *([NoneType()] if _nullable(field.value) else [])])


# --- keyword sets -----------------------------------------------------------------------------------

def _writes(fields: Mapping[str, _Field], api: CheckerPluginInterface, *, expressions: bool, ids: bool,
            key: bool) -> dict[str, Type]:
    """One keyword per field a write may set (``ids``: the ``<fk>_id`` names too; ``key``: the primary key too)."""
    node = [api.named_generic_type(_NODE, [])] if expressions else []
    keywords: dict[str, Type] = {}
    for field in fields.values():
        if field.is_key and not key:
            continue
        keywords[field.name] = make_simplified_union([_written(field), *node])
        attribute = _id_attribute(field) if ids else None
        if attribute is not None:
            keywords[attribute[0]] = make_simplified_union([attribute[1], *node])
    return keywords


def _filters(fields: Iterable[_Field], api: CheckerPluginInterface) -> dict[str, Type]:
    """One keyword per ``field`` and ``field__op`` the repositories' filter language takes."""
    boolean = api.named_generic_type("builtins.bool", [])
    text = api.named_generic_type("builtins.str", [])
    keywords: dict[str, Type] = {}
    for field in fields:
        value = _written(field)
        present = _without_none(value)
        many = api.named_generic_type("typing.Iterable", [present])
        name = field.name
        keywords[name] = keywords[f"{name}__eq"] = keywords[f"{name}__ne"] = value
        keywords.update({f"{name}__{op}": present for op in _COMPARISONS})
        keywords.update({f"{name}__{op}": many for op in _LISTS})
        keywords[f"{name}__isnull"] = boolean
        if field.is_a(_TEXT):
            keywords.update({f"{name}__{op}": text for op in _TEXT_OPERATORS})
    return keywords


def _narrowed(repository: Instance, setting: str, fields: Mapping[str, _Field]) -> list[_Field]:
    """``fields`` narrowed to the repository class's literal ``filter_fields`` / ``sort_fields``, if it lists them."""
    for base in repository.type.mro:
        listed = base.metadata.get(_METADATA, {}).get(setting)
        if listed is not None:
            return [fields[n] for n in listed if n in fields]
        if setting in base.names and base.fullname != REPOSITORY:
            break  # set some other way: every field, as the run time decides
    return list(fields.values())


# --- signatures -------------------------------------------------------------------------------------

def _with_keywords(signature: CallableType, keywords: Mapping[str, Type], name: str) -> CallableType:
    """``signature`` with its ``**kwargs`` replaced by ``keywords``, each optional and keyword-only."""
    kinds, names, types = [], [], []
    taken = {n for n, k in zip(signature.arg_names, signature.arg_kinds, strict=True) if k != ARG_STAR2}
    for kind, arg_name, typ in zip(signature.arg_kinds, signature.arg_names, signature.arg_types, strict=True):
        if kind != ARG_STAR2:
            kinds.append(kind)
            names.append(arg_name)
            types.append(typ)
            continue
        for keyword, keyword_type in keywords.items():
            if keyword not in taken:  # no filter can be called order_by: that keyword is the option's
                kinds.append(ARG_NAMED_OPT)
                names.append(keyword)
                types.append(keyword_type)
    return signature.copy_modified(arg_kinds=kinds, arg_names=names, arg_types=types, name=name)


def _retyped(signature: CallableType, name: str, typ: Type) -> CallableType:
    """``signature`` with parameter ``name`` of type ``typ``."""
    types = [typ if n == name else t for n, t in zip(signature.arg_names, signature.arg_types, strict=True)]
    return signature.copy_modified(arg_types=types)


def _spreads_a_mapping(context: object) -> bool:
    """Whether the call passes ``**mapping``: its names are unknown to mypy, so the loose signature stays."""
    return isinstance(context, CallExpr) and ARG_STAR2 in context.arg_kinds


def _model_of(typ: ProperType) -> Instance | None:
    """The model a call is about: the class (or instance) a model method is called on, or a repository's model."""
    if isinstance(typ, CallableType) and typ.is_type_obj():
        typ = get_proper_type(typ.ret_type)
    elif isinstance(typ, TypeType):
        typ = typ.item
    if not isinstance(typ, Instance):
        return None
    if typ.type.has_base(MODEL):
        return typ
    base = next((b for b in typ.type.mro if b.fullname == REPOSITORY), None)
    args = map_instance_to_supertype(typ, base).args if base is not None else ()
    model = get_proper_type(args[0]) if args else None
    return model if isinstance(model, Instance) and model.type.has_base(MODEL) else None


def _literal_of(api: CheckerPluginInterface, names: Sequence[str]) -> Type:
    text = api.named_generic_type("builtins.str", [])
    return make_simplified_union([LiteralType(n, text) for n in names])


def _constructor(info: TypeInfo, ctx: FunctionSigContext) -> FunctionLike:
    fields = _fields(info)
    signature = ctx.default_signature
    if fields is None or _spreads_a_mapping(ctx.context):
        return signature
    # Model.__init__(*args, **kwargs): peewee ignores positional arguments; the fields are keywords.
    loose = signature.copy_modified(arg_kinds=[ARG_STAR2], arg_names=["kwargs"],
                                    arg_types=[AnyType(TypeOfAny.special_form)])
    return _with_keywords(loose, _writes(fields, ctx.api, expressions=False, ids=True, key=True), info.name)


def _model_write(method: str, ctx: MethodSigContext) -> FunctionLike:
    model = _model_of(ctx.type)
    fields = _fields(model.type) if model is not None else None
    if model is None or fields is None or _spreads_a_mapping(ctx.context):
        return ctx.default_signature
    keywords = _writes(fields, ctx.api, expressions=_MODEL_WRITES[method], ids=True, key=True)
    return _with_keywords(ctx.default_signature, keywords, f"{method} of {model.type.name}")


def _repository_method(method: str, ctx: MethodSigContext) -> FunctionLike:
    model = _model_of(ctx.type)
    fields = _fields(model.type) if model is not None else None
    signature = ctx.default_signature
    repository = ctx.type
    if model is None or fields is None or not isinstance(repository, Instance):
        return signature
    owner = repository.type.name if repository.type.fullname != REPOSITORY else f"Repository[{model.type.name}]"
    name = f"{method} of {owner}"
    api = ctx.api
    if method == "find_unique":
        return _find_unique(signature, fields, ctx.args, api).copy_modified(name=name)
    if _spreads_a_mapping(ctx.context):
        return signature
    if method == "create":
        return _with_keywords(signature, _writes(fields, api, expressions=False, ids=True, key=True), name)
    if method == "update":
        return _with_keywords(signature, _writes(fields, api, expressions=False, ids=False, key=False), name)
    typed = _with_keywords(signature, _filters(_narrowed(repository, "filter_fields", fields), api), name)
    if method == "update_where" and ctx.args and len(ctx.args[0]) == 1 and isinstance(ctx.args[0][0], DictExpr):
        changes = _writes(fields, api, expressions=True, ids=False, key=False)
        shape = TypedDictType(changes, set(), set(), api.named_generic_type("typing._TypedDict", []))
        typed = _retyped(typed, "changes", shape)
    if method in _ORDERED and _order_is_literal(signature, ctx.args):
        keys = [f"{prefix}{f.name}" for f in _narrowed(repository, "sort_fields", fields) for prefix in ("", "-")]
        key = _literal_of(api, keys)
        typed = _retyped(typed, "order_by", make_simplified_union(
            [key, api.named_generic_type("typing.Sequence", [key])]))
    return typed


def _order_is_literal(signature: CallableType, actuals: list[list[Expression]]) -> bool:
    """Whether the call spells its ``order_by`` out (a string, or a list or tuple of strings)."""
    position = signature.arg_names.index("order_by") if "order_by" in signature.arg_names else None
    given = actuals[position] if position is not None and position < len(actuals) else []
    return len(given) == 1 and _literal_strings(given[0]) is not None


def _find_unique(signature: CallableType, fields: Mapping[str, _Field], actuals: list[list[Expression]],
                 api: CheckerPluginInterface) -> CallableType:
    """``find_unique(field, value)``: ``field`` one of the unique fields, ``value`` of that field's type."""
    unique = {n: f for n, f in fields.items() if f.is_key or f.declared.get("unique")}
    if not unique or len(signature.arg_types) < 2:
        return signature
    named = actuals[0][0] if actuals and len(actuals[0]) == 1 else None
    field = unique.get(named.value) if isinstance(named, StrExpr) else None
    value = _written(field) if field is not None else make_simplified_union([_written(f) for f in unique.values()])
    return signature.copy_modified(arg_types=[_literal_of(api, list(unique)), value, *signature.arg_types[2:]])
