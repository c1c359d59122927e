"""The base of every domain model (its own module so models, variables and versions can
all build on it without importing each other in a circle)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Strict by default: an unknown field in configuration is a mistake worth naming.

    Validators are built on a model's first use, not when its class is defined: a handler
    imports the whole domain but validates a few models, and building the others cost
    every cold start about 30 ms (`bench/cold_start.py`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
