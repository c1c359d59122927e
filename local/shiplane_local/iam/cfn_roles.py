"""A CloudFormation update of an `AWS::IAM::Role` changes the role, as on AWS.

moto 5.2.5's update keeps the role's trust policy and inline policies as they were
created (it only updates the description): a target bootstrap stack updated with a new
external ID would go on trusting the old one. This patch applies the new
AssumeRolePolicyDocument and replaces the inline policies with the template's.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.models import Role

from .._patching import Patches


class RoleUpdates:
    def __init__(self) -> None:
        self._patches = Patches()

    def install(self) -> None:
        original = Role.update_from_cloudformation_json

        def update(
            cls: type[Role],
            original_resource: Role,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> Role:
            role = original.__func__(  # type: ignore[attr-defined]
                cls,
                original_resource,
                new_resource_name,
                cloudformation_json,
                account_id,
                region_name,
            )
            properties = cloudformation_json.get("Properties", {})
            trust = properties.get("AssumeRolePolicyDocument")
            if trust is not None:
                role.assume_role_policy_document = (
                    trust if isinstance(trust, str) else json.dumps(trust)
                )
            wanted = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}
            for name in list(role.policies):
                if name not in wanted:
                    role.delete_policy(name)
            for name, document in wanted.items():
                role.put_policy(name, document)
            return role

        self._patches.replace(Role, "update_from_cloudformation_json", classmethod(update))

    def uninstall(self) -> None:
        self._patches.undo()
