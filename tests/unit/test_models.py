"""Configuration validation: what a user who writes a bad `shiplane.yaml` is told."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.domain.models import Configuration, Container, Lifecycle, Phase, Target, TaskSpec
from shiplane.errors import ConfigurationError, InvalidRequestError
from shiplane.services.apply_configuration import apply_configuration, check_configuration
from tests.helpers import demo_configuration

DEMO_TARGET: dict[str, Any] = demo_configuration()["targets"][0]


def config(**changes: Any) -> dict[str, Any]:
    document = demo_configuration()
    document.update(copy.deepcopy(changes))
    return document


def step_of(document: dict[str, Any]) -> dict[str, Any]:
    return document["projects"][0]["steps"][0]


class RecordingWriter:
    def __init__(self) -> None:
        self.saved: list[Configuration] = []

    def save_configuration(self, config: Configuration) -> None:
        self.saved.append(config)


# --------------------------------------------------------------------------- the example


def test_the_example_configuration_is_valid() -> None:
    writer = RecordingWriter()
    applied = apply_configuration(demo_configuration(), writer)
    assert writer.saved == [applied]
    assert [e.name for e in applied.environments] == ["dev", "test", "prod"]
    assert applied.projects[0].repositories == ["web"]
    check_configuration(applied)


# --------------------------------------------------------------------------- single models


@pytest.mark.parametrize(
    "image", ["web:latest", "web:1.4.0", "web@sha256:" + "a" * 64, "123.dkr.ecr/web:v1"]
)
def test_container_image_with_tag_or_digest_is_refused_with_the_reason(image: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Container(name="web", image=image)
    message = str(caught.value)
    assert image in message
    assert "without tag" in message
    assert "release is created" in message


def test_container_image_repository_name_is_accepted() -> None:
    assert Container(name="web", image="team/web").image == "team/web"


def test_duplicate_container_names_are_named() -> None:
    with pytest.raises(ValidationError, match=r"more than once: sidecar") as caught:
        TaskSpec(
            family="web",
            containers=[
                Container(name="web", image="web"),
                Container(name="sidecar", image="envoy"),
                Container(name="sidecar", image="otel"),
            ],
        )
    assert "web," not in str(caught.value)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345:role/shiplane-deploy",  # short account id
        "arn:aws:iam::123456789012:user/shiplane-deploy",  # a user, not a role
        "shiplane-deploy",
        "arn:aws:sts::123456789012:role/shiplane-deploy",
    ],
)
def test_bad_role_arn_is_refused(arn: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Target.model_validate({**DEMO_TARGET, "deploy_role_arn": arn})
    assert [e["loc"] for e in caught.value.errors()] == [("deploy_role_arn",)]
    with pytest.raises(ValidationError) as caught:
        Target.model_validate({**DEMO_TARGET, "cloudformation_role_arn": arn})
    assert [e["loc"] for e in caught.value.errors()] == [("cloudformation_role_arn",)]
    with pytest.raises(ValidationError):
        TaskSpec(family="web", task_role_arn=arn, containers=[Container(name="a", image="a")])


def test_good_role_arns_are_accepted_and_give_the_account() -> None:
    target = Target.model_validate(
        {**DEMO_TARGET, "deploy_role_arn": "arn:aws-us-gov:iam::210987654321:role/path/deploy"}
    )
    assert target.account_id == "210987654321"


def test_environment_twice_in_a_lifecycle_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        Lifecycle.model_validate(
            {
                "name": "default",
                "phases": [
                    {"name": "first", "environments": [{"environment": "dev"}]},
                    {"name": "second", "environments": [{"environment": "test"}]},
                    {"name": "third", "environments": [{"environment": "dev"}]},
                ],
            }
        )
    message = str(caught.value)
    assert "'dev'" in message
    assert "'default'" in message
    assert "'test'" not in message


def test_minimum_environments_larger_than_the_phase_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Phase.model_validate(
            {
                "name": "regions",
                "environments": [{"environment": "eu"}, {"environment": "us"}],
                "minimum_environments": 3,
            }
        )
    message = str(caught.value)
    assert "'regions'" in message
    assert "minimum_environments=3" in message
    assert "only 2" in message
    # equal is fine
    Phase.model_validate(
        {"name": "regions", "environments": [{"environment": "eu"}], "minimum_environments": 1}
    )


def test_unknown_field_is_named_when_applying() -> None:
    document = config()
    document["targets"][1]["subnet"] = ["subnet-1"]  # typo of `subnets`
    writer = RecordingWriter()
    with pytest.raises(InvalidRequestError) as caught:
        apply_configuration(document, writer)
    assert "targets.1.subnet" in str(caught.value)
    assert writer.saved == []


def test_tagged_image_in_a_document_names_the_field() -> None:
    document = config()
    step_of(document)["task"]["containers"][0]["image"] = "web:latest"
    with pytest.raises(InvalidRequestError) as caught:
        apply_configuration(document, RecordingWriter())
    assert "projects.0.steps.0.task.containers.0.image" in str(caught.value)
    assert "web:latest" in str(caught.value)


# --------------------------------------------------------------------------- cross-references


def broken(document: dict[str, Any]) -> ConfigurationError:
    parsed = Configuration.model_validate(document)
    with pytest.raises(ConfigurationError) as caught:
        check_configuration(parsed)
    writer = RecordingWriter()
    with pytest.raises(ConfigurationError):
        apply_configuration(document, writer)
    assert writer.saved == [], "a bad document must write nothing"
    return caught.value


def test_unknown_lifecycle_on_a_project_is_named() -> None:
    document = config()
    document["projects"][0]["lifecycle"] = "hotfix"
    message = str(broken(document))
    assert "'web'" in message
    assert "unknown lifecycle 'hotfix'" in message


def test_unknown_environment_on_a_target_is_named() -> None:
    document = config()
    document["targets"][1]["environments"] = ["test", "staging"]
    error = broken(document)
    assert "'test-cluster'" in str(error)
    assert "'staging'" in str(error)


def test_unknown_environment_in_a_lifecycle_phase_is_named() -> None:
    document = config()
    document["lifecycles"][0]["phases"][1]["environments"] = [{"environment": "qa"}]
    message = str(broken(document))
    assert "'default'" in message
    assert "'testing'" in message
    assert "'qa'" in message


def test_step_role_that_no_target_serves_in_an_environment_is_named() -> None:
    document = config()
    document["targets"] = [t for t in document["targets"] if t["name"] != "prod-cluster"]
    message = str(broken(document))
    assert "'web-service'" in message
    assert "'prod'" in message
    assert "'web-server'" in message


def test_a_target_with_another_role_does_not_serve_the_step() -> None:
    document = config()
    document["targets"][2]["roles"] = ["worker"]
    message = str(broken(document))
    assert "'prod'" in message
    assert "'web-server'" in message


def test_environments_without_a_phase_need_no_target() -> None:
    # a lifecycle that does not use prod needs no prod target
    document = config()
    document["lifecycles"][0]["phases"] = document["lifecycles"][0]["phases"][:2]
    document["targets"] = document["targets"][:2]
    check_configuration(Configuration.model_validate(document))


def test_implicit_lifecycle_needs_a_target_in_every_environment() -> None:
    document = config()
    document["environments"].append({"name": "sandbox"})
    document["lifecycles"][0]["phases"] = []
    assert "'sandbox'" in str(broken(document))


@pytest.mark.parametrize(
    ("kind", "section", "name"),
    [
        ("environment", "environments", "test"),
        ("lifecycle", "lifecycles", "default"),
        ("target", "targets", "dev-cluster"),
        ("project", "projects", "web"),
    ],
)
def test_duplicates_are_named(kind: str, section: str, name: str) -> None:
    document = config()
    original = next(x for x in document[section] if x["name"] == name)
    document[section].append(copy.deepcopy(original))
    message = str(broken(document))
    assert kind in message
    assert name in message


def test_target_network_ids_must_look_like_aws_ids() -> None:
    from pydantic import ValidationError

    from shiplane.domain.models import Target

    base = {
        "name": "dev-cluster",
        "environments": ["dev"],
        "roles": ["web"],
        "region": "us-east-1",
        "cluster": "c",
        "deploy_role_arn": "arn:aws:iam::123456789012:role/shiplane-deploy",
    }
    Target.model_validate(base | {"subnets": ["subnet-0123456789abcdef0"]})
    with pytest.raises(ValidationError, match=r"subnets\.0"):
        Target.model_validate(base | {"subnets": ["subnet-dev"]})
    with pytest.raises(ValidationError, match=r"security_groups\.0"):
        Target.model_validate(
            base | {"subnets": ["subnet-0123456789abcdef0"], "security_groups": ["sg-x"]}
        )


def test_every_deployment_status_has_a_style_on_the_dashboard_table() -> None:
    from shiplane.domain.models import DeploymentStatus
    from shiplane_local.views import STATUS_STYLE

    assert set(STATUS_STYLE) == set(DeploymentStatus)


def _tenant(name: str, *tags: str, **projects: list[str]) -> Any:
    from shiplane.domain.models import Tenant

    return Tenant(name=name, tags=list(tags), projects=projects)


def test_tenant_tag_filters_or_within_a_set_and_across_sets() -> None:
    from shiplane.domain.tenants import tags_match

    assert tags_match(["Tier/Gold", "Tier/Silver"], ["Tier/Silver"])
    assert tags_match(["Tier/Gold", "Region/EU"], ["Tier/Gold", "Region/EU", "X/Y"])
    assert not tags_match(["Tier/Gold", "Region/EU"], ["Tier/Gold", "Region/US"])
    assert tags_match([], ["Anything/At-all"])


def test_targets_serve_tenants_by_mode_name_and_tag() -> None:
    from shiplane.domain.models import Target
    from shiplane.domain.tenants import target_serves

    base = {
        "name": "t",
        "environments": ["dev"],
        "roles": ["web"],
        "region": "us-east-1",
        "cluster": "c",
        "deploy_role_arn": "arn:aws:iam::123456789012:role/shiplane-deploy",
        "subnets": ["subnet-0123456789abcdef0"],
    }
    gold = _tenant("acme", "Tier/Gold")
    silver = _tenant("globex", "Tier/Silver")
    untenanted = Target.model_validate(base)
    both = Target.model_validate(base | {"tenanted_mode": "both"})
    by_tag = Target.model_validate(
        base | {"tenanted_mode": "tenanted", "tenant_tags": ["Tier/Gold"]}
    )
    by_name = Target.model_validate(base | {"tenanted_mode": "tenanted", "tenants": ["globex"]})
    assert target_serves(untenanted, None) and not target_serves(untenanted, gold)
    assert target_serves(both, None) and target_serves(both, gold)
    assert target_serves(by_tag, gold) and not target_serves(by_tag, silver)
    assert not target_serves(by_tag, None)
    assert target_serves(by_name, silver) and not target_serves(by_name, gold)


def test_deployment_tenants_follow_project_mode_connections_and_channel_filter() -> None:
    from shiplane.domain.models import Channel, Project
    from shiplane.domain.tenants import deployment_tenants

    project = Project.model_validate(
        {
            "name": "web",
            "lifecycle": "default",
            "tenanted_mode": "both",
            "steps": demo_configuration()["projects"][0]["steps"],
        }
    )
    tenants = [
        _tenant("acme", "Tier/Gold", web=["dev", "prod"]),
        _tenant("globex", "Tier/Silver", web=["dev"]),
        _tenant("initech", "Tier/Gold", other=["dev"]),
    ]
    everyone = Channel(name="default")
    gold_only = Channel(name="hotfix", tenant_tags=["Tier/Gold"])
    assert deployment_tenants(project, everyone, tenants, "dev") == ["untenanted", "acme", "globex"]
    assert deployment_tenants(project, gold_only, tenants, "dev") == ["untenanted", "acme"]
    assert deployment_tenants(project, everyone, tenants, "prod") == ["untenanted", "acme"]
