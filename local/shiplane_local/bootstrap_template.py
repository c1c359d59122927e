"""bootstrap/target-account.yaml read as CloudFormation would resolve it for one account
and region: its roles' names and policy documents, so the local cloud and the tests use
exactly what the template grants (never a copy of it).

Resolves the intrinsic functions the template uses (Ref, Fn::Sub, Fn::If, Fn::GetAtt of
a role's Arn, Fn::Join and the condition functions); anything else is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap" / "target-account.yaml"
_NO_VALUE = object()


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    return dict(cfn_yaml.load(path))


def load(path: Path = BOOTSTRAP) -> dict[str, Any]:
    return _load(str(path))


class Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        account_id: str,
        region: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        values = {
            name: str(spec.get("Default", ""))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        values.update(parameters or {})
        values.update(
            {
                "AWS::AccountId": account_id,
                "AWS::Region": region,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self.values = values

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                if arg in self.values:
                    return self.values[arg]
                return self._physical_name(arg)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                extra = {k: self.resolve(v) for k, v in extra.items()}

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in extra:
                        return str(extra[name])
                    if "." in name:
                        return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
                    return str(self.resolve({"Ref": name}))

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if attribute != "Arn":
                    raise ValueError(f"Fn::GetAtt {logical_id}.{attribute} is not resolved")
                return self.role_arn(logical_id)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(i) for i in self.resolve(items))
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return left == right
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise ValueError(f"{key} is not resolved")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _physical_name(self, logical_id: str) -> str:
        properties = self.template["Resources"][logical_id].get("Properties") or {}
        name = properties.get("RoleName")
        if name is None:
            raise ValueError(f"{logical_id} has no fixed name")
        return str(self.resolve(name))

    def role_arn(self, logical_id: str) -> str:
        return (
            f"arn:aws:iam::{self.values['AWS::AccountId']}:role/{self._physical_name(logical_id)}"
        )


def role(
    logical_id: str,
    *,
    account_id: str,
    region: str,
    parameters: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(role name, trust policy, [(policy name, document)]) of one of the template's roles."""
    template = template if template is not None else load()
    resolver = Resolver(template, account_id=account_id, region=region, parameters=parameters)
    properties = resolver.resolve(template["Resources"][logical_id]["Properties"])
    policies = [(p["PolicyName"], p["PolicyDocument"]) for p in properties.get("Policies", [])]
    return str(properties["RoleName"]), properties["AssumeRolePolicyDocument"], policies
