"""The base of every domain model (its own module so models, variables and versions can
all build on it without importing each other in a circle)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Strict by default: an unknown field in configuration is a mistake worth naming."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
