"""Releases: a service's versions."""

from __future__ import annotations

import uuid

from orm_kit.models import Release, Service
from orm_kit.repository import Repository

__all__ = ["ReleaseRepository"]


class ReleaseRepository(Repository[Release]):
    """Releases of services."""

    model = Release
    default_order = ("-created_at",)

    def find_by_version(self, service: Service | uuid.UUID, version: str) -> Release | None:
        """The release ``version`` of ``service``, or ``None``."""
        key = service.id if isinstance(service, Service) else service
        return self.find_one(service=key, version=version)
