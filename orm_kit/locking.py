"""Optimistic locking: saving a copy that someone else changed since it was read is refused.

A model opts in by deriving from :class:`Versioned` and having an integer version column::

    class Service(Versioned, PlatformModel):
        lock_version = IntegerField(default=1)

    a = Service.get_by_id(key)
    b = Service.get_by_id(key)
    a.description = "first"; a.save()            # UPDATE ... WHERE id = ? AND lock_version = 1; now 2
    b.description = "second"; b.save()           # matches no row: ConflictError, nothing changed

Every update of a persisted row runs ``UPDATE ... SET ..., lock_version = n + 1 WHERE id = ? AND
lock_version = n`` and checks the row count, so two writers can never both win; a bulk
``Model.update(...)`` query is not versioned (it does not start from a copy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import peewee

from orm_kit.errors import ConflictError
from orm_kit.model import Model, register_pk_expr

__all__ = ["Versioned", "conflict_error", "missing_version_error", "restore", "snapshot"]


def conflict_error(instance: peewee.Model, version_field: str, stale: object) -> ConflictError:
    """The error for a stale copy of ``instance`` (read at version ``stale``)."""
    key = getattr(instance, "_pk", None)
    return ConflictError(
        f"{type(instance).__name__} {key!r} was changed or deleted by someone else since it was read "
        f"({version_field} {stale!r} is stale); nothing was saved: read it again and reapply the change"
    )


def missing_version_error(instance: peewee.Model, version_field: str, got: object) -> ConflictError:
    """The error for a copy of ``instance`` read without its version column (``got`` instead of a number)."""
    return ConflictError(
        f"{type(instance).__name__} {getattr(instance, '_pk', None)!r} has no {version_field} loaded (got {got!r}); "
        f"select the {version_field} column with the row before saving it"
    )


def snapshot(instance: peewee.Model) -> tuple[dict[str, Any], set[str]]:
    """A copy of ``instance``'s values and dirty fields, for :func:`restore` after a failed save."""
    state: Any = instance
    return dict(state.__data__), set(state._dirty)


def restore(instance: peewee.Model, saved: tuple[dict[str, Any], set[str]]) -> None:
    """Put back what :func:`snapshot` saved: a failed save leaves the copy exactly as it was."""
    state: Any = instance
    state.__data__, state._dirty = dict(saved[0]), set(saved[1])


class Versioned(Model):
    """Mixin for :class:`~orm_kit.model.Model` subclasses: optimistic locking on ``version_field``."""

    version_field: ClassVar[str] = "lock_version"
    _expected_version: int | None = None  # set only while save() runs its UPDATE

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        """Insert, or update only if the row still has the version this copy was read at."""
        if force_insert or not self._persisted:
            return super().save(force_insert=force_insert, only=only)
        name = self.version_field
        before = snapshot(self)
        expected = self.__data__.get(name)
        if not isinstance(expected, int):
            raise missing_version_error(self, name, expected)
        self.__data__[name] = expected + 1
        if only is not None:
            only = [*only, self._meta.fields[name]]
        self._expected_version = expected
        try:
            rows = super().save(only=only)
        except BaseException:
            restore(self, before)
            raise
        finally:
            self._expected_version = None
        if not rows:
            restore(self, before)
            raise conflict_error(self, name, expected)
        return rows

    def _pk_expr(self) -> peewee.Expression:
        expression: peewee.Expression = super()._pk_expr()  # type: ignore[misc]  # missing from the stubs
        if self._expected_version is not None:
            expression &= self._meta.fields[self.version_field] == self._expected_version
        return expression


register_pk_expr(Versioned._pk_expr)  # the fast save path adds the version condition itself
