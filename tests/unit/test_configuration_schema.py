"""The published JSON Schema of the configuration document (schema/shiplane.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from shiplane_local.schema import SCHEMA_PATH, schema_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "shiplane.yaml"


def test_the_committed_schema_is_the_one_the_model_gives() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), (
        "schema/shiplane.schema.json is stale: run `python -m shiplane_local.schema`"
    )


def test_the_example_names_the_schema_for_editors() -> None:
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/shiplane.schema.json"
    assert (EXAMPLE.parent / "../schema/shiplane.schema.json").resolve() == SCHEMA_PATH


def test_the_example_is_valid_and_a_broken_document_is_not() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    document = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(document, schema)
    document["targets"][0]["region"] = "moon-1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)
