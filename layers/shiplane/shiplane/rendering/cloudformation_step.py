"""The `cloudformation` step rendered for one deployment: variables substituted into the
*parsed* template and into the parameter values, value by value, so that a value can never
change the template's structure. Sensitive variables are refused: templates and parameters
are visible to anyone who can read the stack in the CloudFormation console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shiplane.domain.models import CloudFormationStep
from shiplane.domain.variables import Variable, substitute
from shiplane.errors import SensitiveVariableMisuseError


@dataclass(frozen=True)
class RenderedStack:
    template: dict[str, Any]
    parameters: dict[str, str]


def _value(text: str, lookup: Mapping[str, Variable | str], where: str) -> str:
    result = substitute(text, lookup, where=where)
    if result.sensitive:
        used = ", ".join(sorted({v.name for v in result.sensitive}))
        raise SensitiveVariableMisuseError(
            f"{where} uses the sensitive variable(s) {used}: a CloudFormation template and its "
            "parameters are visible in the console; pass a secret as an SSM or Secrets "
            "Manager reference (e.g. a dynamic reference {{resolve:secretsmanager:...}})",
            field=where,
        )
    return result.text


def _walk(node: Any, lookup: Mapping[str, Variable | str], where: str) -> Any:
    if isinstance(node, str):
        return _value(node, lookup, where) if "#{" in node else node
    if isinstance(node, dict):
        return {key: _walk(item, lookup, f"{where}.{key}") for key, item in node.items()}
    if isinstance(node, list):
        return [_walk(item, lookup, f"{where}.{index}") for index, item in enumerate(node)]
    return node


def render_cloudformation_step(
    step: CloudFormationStep, lookup: Mapping[str, Variable | str]
) -> RenderedStack:
    """The template and parameters to create or update the stack with. `lookup` holds the
    unit's resolved variables and system variables (see services.evaluation)."""
    where = f"steps.{step.name}"
    template = _walk(step.parsed_template(), lookup, f"{where}.template")
    parameters = {
        name: _value(raw, lookup, f"{where}.parameters.{name}")
        for name, raw in sorted(step.parameters.items())
    }
    return RenderedStack(template=template, parameters=parameters)
