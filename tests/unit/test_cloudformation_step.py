"""The `cloudformation` step: the template loader, validation at apply time, and
variables substituted into the parsed template."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.domain.cfn_template import TemplateParseError, parse_template
from shiplane.domain.models import CloudFormationStep, ImageRef, Project, Release, Target
from shiplane.domain.variables import Variable
from shiplane.errors import SensitiveVariableMisuseError, UndefinedVariableError
from shiplane.rendering.cloudformation_step import render_cloudformation_step
from shiplane.services.evaluation import evaluate_step, unit_lookup

DIGEST = "sha256:" + "a" * 64


def step(template: str, **extra: Any) -> CloudFormationStep:
    return CloudFormationStep(name="infra", target_role="web", template=template, **extra)


QUEUE = """\
Parameters:
  Image:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: "#{Name}"
Outputs:
  QueueUrl:
    Value: !Ref Queue
"""


# --------------------------------------------------------------------------- the loader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!Ref Bucket", {"Ref": "Bucket"}),
        ("!Condition IsProd", {"Condition": "IsProd"}),
        ("!GetAtt Queue.Arn", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!GetAtt [Queue, Arn]", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!Sub 'arn:${AWS::Region}'", {"Fn::Sub": "arn:${AWS::Region}"}),
        ("!Sub ['${A}', {A: !Ref B}]", {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}),
        ("!Join [',', [a, b]]", {"Fn::Join": [",", ["a", "b"]]}),
        ("!If [IsProd, a, b]", {"Fn::If": ["IsProd", "a", "b"]}),
        ("!Select [0, !GetAZs '']", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
        ("!Split [',', 'a,b']", {"Fn::Split": [",", "a,b"]}),
        ("!FindInMap [M, k, v]", {"Fn::FindInMap": ["M", "k", "v"]}),
        ("!ImportValue shared-vpc", {"Fn::ImportValue": "shared-vpc"}),
        ("!Base64 hello", {"Fn::Base64": "hello"}),
        ("!GetAZs us-east-1", {"Fn::GetAZs": "us-east-1"}),
        ("!Equals [a, b]", {"Fn::Equals": ["a", "b"]}),
        ("!Not [!Equals [a, b]]", {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}),
        (
            "!And [!Condition A, !Condition B]",
            {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        ),
        ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!Cidr ['10.0.0.0/16', 4, 8]", {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}),
    ],
)
def test_every_short_tag_becomes_its_long_form(text: str, expected: Any) -> None:
    parsed = parse_template(f"Resources:\n  R:\n    Type: X\n    Properties:\n      V: {text}\n")
    assert parsed["Resources"]["R"]["Properties"]["V"] == expected


def test_json_templates_and_dates_as_text() -> None:
    assert parse_template('{"Resources": {"R": {"Type": "X"}}}') == {
        "Resources": {"R": {"Type": "X"}}
    }
    parsed = parse_template("AWSTemplateFormatVersion: 2010-09-09\nResources: {R: {Type: X}}\n")
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"


@pytest.mark.parametrize("text", ["Resources: [unclosed", "{not json", "- a list", "Outputs: {}"])
def test_a_template_that_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(TemplateParseError):
        parse_template(text)


def test_unknown_tags_and_python_objects_are_refused() -> None:
    with pytest.raises(TemplateParseError):
        parse_template("Resources: {R: !!python/object:os.system {}}")


# --------------------------------------------------------------------------- validation


def test_a_template_that_does_not_parse_names_the_step() -> None:
    with pytest.raises(ValidationError, match=r"step 'infra': template does not parse"):
        step("Resources: [unclosed")


def test_a_parameter_the_template_does_not_declare_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"parameters Colour not declared.*Image"):
        step(QUEUE, parameters={"Colour": "blue"})


def test_an_unused_package_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"packages app not used"):
        step(QUEUE, packages=[{"name": "app", "repository": "app-repo"}])


def test_a_package_used_in_a_parameter_value_or_the_template_is_accepted() -> None:
    by_parameter = step(
        QUEUE,
        parameters={"Image": "#{Shiplane.Package[app].Image}"},
        packages=[{"name": "app", "repository": "app-repo"}],
    )
    assert by_parameter.repositories == ["app-repo"]
    in_template = step(
        QUEUE.replace('"#{Name}"', '"q-#{shiplane.package[APP].Tag}"'),
        packages=[{"name": "app", "repository": "app-repo"}],
    )
    assert in_template.packages[0].name == "app"


def test_a_reference_to_an_undeclared_package_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"package\(s\) other that the step's packages"):
        step(QUEUE.replace('"#{Name}"', '"#{Shiplane.Package[other].Tag}"'))


def test_a_project_has_several_steps_with_unique_names_and_their_repositories() -> None:
    infra = {
        "name": "infra",
        "type": "cloudformation",
        "target_role": "web",
        "template": QUEUE,
        "parameters": {"Image": "#{Shiplane.Package[worker].Image}"},
        "packages": [{"name": "worker", "repository": "worker-repo"}],
    }
    project = Project.model_validate(
        {"name": "p", "lifecycle": "l", "steps": [infra, {**infra, "name": "more"}]}
    )
    assert [type(s).__name__ for s in project.steps] == ["CloudFormationStep"] * 2
    assert project.repositories == ["worker-repo"]
    with pytest.raises(ValidationError, match=r"steps: name\(s\) used more than once: infra"):
        Project.model_validate({"name": "p", "lifecycle": "l", "steps": [infra, infra]})


# --------------------------------------------------------------------------- rendering


def release(process: list[Any], variables: list[Variable] | None = None) -> Release:
    return Release(
        project="p",
        version="2.0.1",
        images={
            "app-repo": ImageRef(
                repository="app-repo",
                registry="123456789012.dkr.ecr.us-east-1.amazonaws.com",
                tag="v2",
                digest=DIGEST,
            )
        },
        process=process,
        variables=variables or [],
        lifecycle="l",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        created_by={"kind": "api"},
    )


TARGET = Target(
    name="t1",
    environments=["dev"],
    roles=["web"],
    region="us-east-1",
    cluster="c",
    deploy_role_arn="arn:aws:iam::123456789012:role/deploy",
    subnets=["subnet-0a1de0000000000d1"],
)


def render(s: CloudFormationStep, variables: list[Variable], outputs: Any = None) -> Any:
    r = release([s], variables)
    return render_cloudformation_step(s, unit_lookup(r, s, "dev", None, TARGET, "d-1", outputs))


def test_values_are_substituted_into_the_parsed_template_and_cannot_change_its_structure() -> None:
    s = step(
        QUEUE,
        parameters={"Image": "#{Shiplane.Package[app].Image}"},
        packages=[{"name": "app", "repository": "app-repo"}],
    )
    hostile = "x\nResources:\n  Evil: {Type: AWS::IAM::Role}\nKey: !Ref Evil"
    rendered = render(s, [Variable(name="Name", value=hostile)])
    assert rendered.template["Resources"]["Queue"]["Properties"]["QueueName"] == hostile
    assert set(rendered.template["Resources"]) == {"Queue"}
    assert rendered.template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "Queue"}
    assert rendered.parameters == {
        "Image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/app-repo@{DIGEST}"
    }


def test_system_variables_and_earlier_outputs_reach_the_template() -> None:
    template = QUEUE.replace(
        '"#{Name}"', '"#{Shiplane.Step[db].Output[Host]}-#{Shiplane.Environment.Name}"'
    )
    rendered = render(step(template), [], {"db": {"Host": "db.internal"}})
    assert rendered.template["Resources"]["Queue"]["Properties"]["QueueName"] == "db.internal-dev"


def test_an_undefined_variable_names_where_it_was_used() -> None:
    with pytest.raises(
        UndefinedVariableError,
        match=r"steps\.infra\.template\.Resources\.Queue\.Properties\.QueueName",
    ):
        render(step(QUEUE), [])


def test_a_sensitive_variable_anywhere_in_the_template_or_parameters_is_refused() -> None:
    secret = Variable(
        name="Name", sensitive=True, secret_ref="arn:aws:ssm:us-east-1:123456789012:parameter/x"
    )
    with pytest.raises(SensitiveVariableMisuseError, match=r"template\.Resources\.Queue"):
        render(step(QUEUE), [secret])
    with pytest.raises(SensitiveVariableMisuseError, match=r"parameters\.Image"):
        render(
            step(QUEUE.replace('"#{Name}"', "plain"), parameters={"Image": "#{Name}"}),
            [secret],
        )


def test_release_checks_know_the_outputs_earlier_templates_declare() -> None:
    infra = step(QUEUE.replace('"#{Name}"', "plain"))
    reader = CloudFormationStep(
        name="reader",
        target_role="web",
        template=QUEUE.replace('"#{Name}"', '"#{Shiplane.Step[infra].Output[QueueUrl]}"'),
    )
    r = release([infra, reader])
    assert evaluate_step(r, reader, "dev", None, TARGET, "release-check") == {}
    missing = reader.model_copy(update={"template": reader.template.replace("QueueUrl]", "Nope]")})
    with pytest.raises(UndefinedVariableError, match=r"Shiplane\.Step"):
        evaluate_step(release([infra, missing]), missing, "dev", None, TARGET, "release-check")
