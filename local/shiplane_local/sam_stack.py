"""Deploy a SAM `template.yaml` as a CloudFormation stack in moto, offline.

The template goes through the real SAM translator, so the local wiring is the template's
wiring. Before translating, local artefact paths are rewritten (a `CodeUri` becomes a
marker zip in a local bucket, a `DefinitionUri` is inlined) and layers are removed (the
`shiplane` package is importable in-process, and a layer's `Ref` breaks moto's
update_stack). After translating, resources moto's CloudFormation cannot create (API
Gateway, Scheduler) are set aside in `dropped` for the local cloud to serve itself.

Two fixes to moto's CloudFormation state machines are installed by `StateMachinePatch`:
they are created in the backend the ASL interpreter reads (when execution is enabled),
and their `DefinitionSubstitutions` are applied.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.core.responses import EmptyResult
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.responses import StepFunctionResponse
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from ._patching import Patches
from .lambda_runtime import marker_zip

log = logging.getLogger("shiplane_local")

ARTIFACT_BUCKET = "shiplane-local-artifacts"
DROPPED_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::", "AWS::Scheduler::")
_LAYER_TYPES = {"AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"}


class _NoManagedPolicies:
    """The translator's fallback policy loader asks IAM; the bundled map is enough here."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass
class Translation:
    template: dict[str, Any]  # plain CloudFormation, ready for create_stack
    code_dirs: dict[str, Path] = field(default_factory=dict)  # function logical id -> dir
    dropped: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> resource
    layer_dirs: list[Path] = field(default_factory=list)  # ContentUri of the removed layers

    def layer_packages(self) -> list[str]:
        """Top-level packages the removed layers provide (in-process they are importable)."""
        names: set[str] = set()
        for layer_dir in self.layer_dirs:
            for base in (layer_dir, layer_dir / "python"):
                if base.is_dir():
                    names.update(p.name for p in base.iterdir() if (p / "__init__.py").is_file())
        return sorted(names)


def _is_local(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def translate(
    template_path: Path,
    *,
    upload: Any,
    region: str,
    parameters: dict[str, str] | None = None,
) -> Translation:
    """Translate `template_path` to CloudFormation; `upload(key, bytes)` stores artefacts."""
    import os

    root = template_path.parent
    sam = yaml_parse(template_path.read_text())
    resources: dict[str, Any] = sam.get("Resources", {})
    code_dirs: dict[str, Path] = {}

    # Layers: the shared package is importable in-process; drop them before translating.
    layer_ids = [lid for lid, r in resources.items() if r.get("Type") in _LAYER_TYPES]
    layer_dirs: list[Path] = []
    for lid in layer_ids:
        content = (resources[lid].get("Properties") or {}).get("ContentUri")
        if _is_local(content):
            layer_dirs.append((root / str(content)).resolve())
        del resources[lid]
        log.info("template: layer %s not deployed locally (its code is importable)", lid)
    globals_fn = sam.get("Globals", {}).get("Function", {})
    globals_fn.pop("Layers", None)

    def code_location(logical_id: str, uri: str) -> dict[str, str]:
        code_dir = (root / uri).resolve()
        if not code_dir.is_dir():
            raise FileNotFoundError(f"{logical_id}: CodeUri {uri} is not a directory under {root}")
        body = marker_zip(code_dir)
        key = f"code/{logical_id}-{hashlib.sha256(body).hexdigest()[:12]}.zip"
        upload(key, body)
        code_dirs[logical_id] = code_dir
        return {"Bucket": ARTIFACT_BUCKET, "Key": key}

    global_code_uri = globals_fn.get("CodeUri")
    for lid, resource in resources.items():
        props = resource.setdefault("Properties", {}) or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            props.pop("Layers", None)
            uri = props.get("CodeUri", global_code_uri)
            if props.get("InlineCode") is None and _is_local(uri):
                props["CodeUri"] = code_location(lid, uri)
        elif kind == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if _is_local(uri):
                props["Definition"] = json.loads((root / str(uri)).read_text())
                del props["DefinitionUri"]
    if _is_local(global_code_uri):
        globals_fn.pop("CodeUri")

    # The translator reads the region from the environment (boto session) only.
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        cfn = transform(sam, dict(parameters or {}), _NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous

    dropped = _drop_unsupported(cfn, set(layer_ids))
    return Translation(template=cfn, code_dirs=code_dirs, dropped=dropped, layer_dirs=layer_dirs)


def _references(node: Any) -> set[str]:
    """Logical ids referred to by Ref, Fn::GetAtt and Fn::Sub inside `node`."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def _replace_references(node: Any, gone: set[str]) -> Any:
    """Replace references to removed resources by a readable placeholder string."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in gone:
            return f"local-unavailable-{node['Ref']}"
        if set(node) == {"Fn::GetAtt"}:
            value = node["Fn::GetAtt"]
            target = value[0] if isinstance(value, list) else str(value).split(".")[0]
            if target in gone:
                return f"local-unavailable-{target}"
        if set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            text = value[0] if isinstance(value, list) else value

            def sub(match: re.Match[str]) -> str:
                name = match.group(1).split(".")[0]
                return f"local-unavailable-{name}" if name in gone else match.group(0)

            text = re.sub(r"\$\{([^!}][^}]*)\}", sub, text)
            return {"Fn::Sub": [text, value[1]] if isinstance(value, list) else text}
        return {k: _replace_references(v, gone) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_references(v, gone) for v in node]
    return node


def _moto_cannot_create(resource_type: str) -> bool:
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    if resource_type.startswith(DROPPED_PREFIXES) or resource_type in NULL_MODELS:
        return True
    return not resource_type.startswith("Custom::") and resource_type not in get_model_map()


def _drop_unsupported(cfn: dict[str, Any], removed_before: set[str]) -> dict[str, dict[str, Any]]:
    resources: dict[str, Any] = cfn["Resources"]
    dropped = {
        lid: r for lid, r in resources.items() if _moto_cannot_create(str(r.get("Type", "")))
    }
    # A permission that lets a dropped API invoke a function has nothing left to permit.
    for lid, r in resources.items():
        if r.get("Type") == "AWS::Lambda::Permission" and _references(r) & set(dropped):
            dropped[lid] = r
    for lid in dropped:
        del resources[lid]
        log.info("template: %s (%s) not created in moto", lid, dropped[lid]["Type"])
    gone = set(dropped) | removed_before
    for lid, r in resources.items():
        depends = r.get("DependsOn")
        if isinstance(depends, str) and depends in gone:
            del r["DependsOn"]
        elif isinstance(depends, list):
            r["DependsOn"] = [d for d in depends if d not in gone]
        resources[lid] = _replace_references(r, gone)
    outputs = cfn.get("Outputs", {})
    for name in [n for n, o in outputs.items() if _references(o) & gone]:
        del outputs[name]
        log.info("template: output %s refers to a resource not created locally; left out", name)
    return copy.deepcopy(dropped)


def substitute(definition: str, substitutions: dict[str, Any] | None) -> str:
    """Apply `DefinitionSubstitutions` (${Key} placeholders), as CloudFormation does."""
    for key, value in (substitutions or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        definition = definition.replace("${" + key + "}", text)
    return definition


class StateMachinePatch:
    """Route CloudFormation's state machines to the executing backend, with substitutions."""

    def __init__(self) -> None:
        self._patches = Patches()

    def install(self) -> None:
        def create(
            cls: type[StateMachine],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> StateMachine:
            props = cloudformation_json["Properties"]
            name = props.get("StateMachineName", resource_name)
            definition = _definition(props)
            tags = cfn_to_api_tags(props.get("Tags", []))
            backend = stepfunctions_backend(account_id, region_name)
            machine = backend.create_state_machine(
                name, definition, props.get("RoleArn", ""), tags=tags
            )
            log.info("stepfunctions: state machine %s created from the template", name)
            return machine

        def update(
            cls: type[StateMachine],
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> StateMachine:
            props = cloudformation_json.get("Properties", {})
            name = props.get("StateMachineName", original_resource.name)
            backend = stepfunctions_backend(account_id, region_name)
            if name != original_resource.name:
                machine = create(cls, name, cloudformation_json, account_id, region_name)
                backend.delete_state_machine(original_resource.arn)
                return machine
            return backend.update_state_machine(
                original_resource.arn, definition=_definition(props), role_arn=props.get("RoleArn")
            )

        def delete(
            cls: type[StateMachine],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> None:
            backend = stepfunctions_backend(account_id, region_name)
            arn = resource_name
            if not arn.startswith("arn:"):
                arn = f"arn:aws:states:{region_name}:{account_id}:stateMachine:{resource_name}"
            backend.delete_state_machine(arn)

        self._patches.replace(StateMachine, "create_from_cloudformation_json", classmethod(create))
        self._patches.replace(StateMachine, "update_from_cloudformation_json", classmethod(update))
        self._patches.replace(StateMachine, "delete_from_cloudformation_json", classmethod(delete))

        def send_task_failure(response: StepFunctionResponse) -> Any:
            # moto 5.2.5's server drops `cause`: the state machine would catch "None".
            response.stepfunction_backend.send_task_failure(
                response._get_param("taskToken"),
                error=response._get_param("error"),
                cause=response._get_param("cause"),
            )
            return EmptyResult()

        self._patches.replace(StepFunctionResponse, "send_task_failure", send_task_failure)

    def uninstall(self) -> None:
        self._patches.undo()


def _definition(props: dict[str, Any]) -> str:
    definition = props.get("DefinitionString")
    if definition is None and props.get("Definition") is not None:
        definition = json.dumps(props["Definition"])
    return substitute(definition or "", props.get("DefinitionSubstitutions"))
