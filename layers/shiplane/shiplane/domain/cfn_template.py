"""Reading a CloudFormation template's text (YAML with the short intrinsic-function tags,
or JSON) into plain data, so that variables are substituted into the parsed structure,
never into the text."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml


class TemplateParseError(ValueError):
    """The template text is neither JSON nor YAML CloudFormation understands."""


# Short tags whose long form takes a list of arguments when written as a sequence, or a
# single argument otherwise; `!GetAtt a.b` is the one with its own scalar syntax.
_FUNCTIONS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Cidr": "Fn::Cidr",
    "GetAtt": "Fn::GetAtt",
}


@cache
def _template_loader() -> type[yaml.SafeLoader]:
    """SafeLoader plus CloudFormation's short tags, turned into their long form.

    Built on first use: PyYAML costs every handler's cold start about 10 ms, and most
    invocations parse no template."""
    import yaml

    class TemplateLoader(yaml.SafeLoader):
        pass

    def construct_as(long_name: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            value: Any
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if long_name == "Fn::GetAtt" and isinstance(value, str):
                    resource, _, attribute = value.partition(".")
                    value = [resource, attribute]
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
            return {long_name: value}

        return construct

    for short, long in _FUNCTIONS.items():
        TemplateLoader.add_constructor(f"!{short}", construct_as(long))

    # Timestamps and the like stay strings: CloudFormation reads `2010-09-09` as text.
    TemplateLoader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return TemplateLoader


def parse_template(text: str) -> dict[str, Any]:
    """The template as a dict (JSON first, then YAML). Raises TemplateParseError."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TemplateParseError(f"not valid JSON: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.load(text, Loader=_template_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise TemplateParseError(f"not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise TemplateParseError("the template must be a mapping (with a Resources section)")
    resources = data.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateParseError("the template has no Resources")
    return data


def declared_parameters(template: dict[str, Any]) -> set[str]:
    parameters = template.get("Parameters") or {}
    return set(parameters) if isinstance(parameters, dict) else set()


def strings_in(value: Any) -> list[str]:
    """Every string value anywhere in a parsed template (mapping keys are names, not
    values: variables are never substituted into them)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return found
