"""Layering rules: a pure domain, thin handlers, no local-cloud code in what ships."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPLANE = ROOT / "layers" / "shiplane" / "shiplane"
DOMAIN_FILES = sorted((SHIPLANE / "domain").rglob("*.py"))
HANDLER_FILES = sorted((ROOT / "functions").rglob("*.py"))
SHIPPED_FILES = sorted(
    p
    for base in (ROOT / "functions", ROOT / "layers")
    for p in base.rglob("*")
    if p.is_file() and "__pycache__" not in p.parts
)
FORBIDDEN_IN_DOMAIN = {"boto3", "botocore", "os"}
ALLOWED_IN_HANDLERS = {"shiplane", "aws_lambda_powertools", "typing", "__future__"}


def imported_roots(path: Path) -> set[str]:
    """Top-level packages a module imports, wherever the import statement is."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_walk_finds_the_code() -> None:
    assert {p.name for p in DOMAIN_FILES} >= {"lifecycle.py", "models.py", "naming.py"}
    assert len([p for p in HANDLER_FILES if p.name == "app.py"]) >= 6
    assert imported_roots(SHIPLANE / "adapters" / "dynamodb.py") & {"boto3", "botocore"}


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=rel)
def test_domain_imports_neither_boto3_nor_os(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN_IN_DOMAIN


@pytest.mark.parametrize("path", HANDLER_FILES, ids=rel)
def test_handlers_import_only_shiplane(path: Path) -> None:
    assert imported_roots(path) <= ALLOWED_IN_HANDLERS


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=rel)
def test_shipped_code_knows_nothing_of_the_local_cloud(path: Path) -> None:
    text = path.read_text(errors="replace")
    assert "shiplane_local" not in text
    assert not re.search(r"\bmoto\b", text, re.IGNORECASE)
