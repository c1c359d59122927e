"""Writes schema/shiplane.schema.json, the JSON Schema of a configuration document, from
the Configuration model: `python -m shiplane_local.schema` (a unit test fails when the
committed file is stale). Editors that speak the YAML language server validate and
complete shiplane.yaml with it (its first line names the schema)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shiplane.services.configuration import configuration_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "shiplane.schema.json"


def schema_text() -> str:
    return json.dumps(configuration_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    target = Path((argv or sys.argv[1:] or [str(SCHEMA_PATH)])[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(schema_text())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
