"""Environments: looked up by slug."""

from __future__ import annotations

from orm_kit.models import Environment
from orm_kit.repository import Repository

__all__ = ["EnvironmentRepository"]


class EnvironmentRepository(Repository[Environment]):
    """Environments deployments go to."""

    model = Environment
    search_fields = ("name", "slug")
    default_order = ("name",)

    def find_by_slug(self, slug: str) -> Environment | None:
        """The environment with ``slug``, or ``None`` (one prepared query)."""
        return self.find_unique("slug", slug)
