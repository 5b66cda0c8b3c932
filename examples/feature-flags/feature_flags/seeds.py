"""The tables the service's seed files fill, and the natural keys rows are matched and referred to by.

A flag names its service by the platform's natural key (``service: checkout-api``), a window its
environment (``environment: prod``): the loader resolves them against the platform's rows.
"""

from __future__ import annotations

from feature_flags.models import DeployWindow, FeatureFlag
from orm_kit.seeding import SeedRegistry, SeedTable

REGISTRY = SeedRegistry([
    SeedTable(FeatureFlag, key=("service", "name")),
    SeedTable(DeployWindow, key=("environment", "weekday")),
])
