"""Least privilege, measured: decisions saved per process, merged per role, reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane_local.iam.__main__ import main
from shiplane_local.iam.policy import evaluate
from shiplane_local.iam.roles import Usage
from shiplane_local.iam.usage import merge, render, role_label, save

POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:DeleteItem"],
            "Resource": "arn:aws:dynamodb:us-east-1:1:table/t",
        }
    ]
}
TABLE = "arn:aws:dynamodb:us-east-1:1:table/t"


def _usage(role: str) -> Usage:
    usage = Usage()
    documents = [("FnRolePolicy0", POLICY)]
    usage.hold(role, documents)
    for _ in range(2):
        usage.record(
            role, "dynamodb:GetItem", TABLE, evaluate(documents, "dynamodb:GetItem", TABLE)
        )
    usage.record(role, "dynamodb:PutItem", TABLE, evaluate(documents, "dynamodb:PutItem", TABLE))
    return usage


def test_a_sam_roles_random_suffix_is_not_part_of_its_label() -> None:
    assert role_label("arn:aws:iam::1:role/shiplane-AcquireSlotFunctionRole-0PAKO6ZRDG23") == (
        "shiplane-AcquireSlotFunctionRole"
    )
    assert role_label("arn:aws:iam::1:role/shiplane-deploy") == "shiplane-deploy"


def test_two_workers_runs_merge_into_one_report_per_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPLANE_IAM_USAGE_DIR", str(tmp_path))
    # two local clouds: the same template role under two random suffixes
    save(tmp_path / "usage-gw0-1.json", _usage("arn:aws:iam::1:role/shiplane-FnRole-AAAAAAAAAAAA"))
    save(tmp_path / "usage-gw1-2.json", _usage("arn:aws:iam::1:role/shiplane-FnRole-BBBBBBBBBBBB"))
    [report] = merge(tmp_path).values()
    assert report.role == "shiplane-FnRole"
    assert report.allowed == {"dynamodb:GetItem": 4}
    assert report.denied == {f"dynamodb:PutItem on {TABLE}": 2}
    assert report.unused == ["FnRolePolicy0 | #0 | dynamodb:DeleteItem"]
    text = render(merge(tmp_path))
    assert text.splitlines()[0] == "shiplane-FnRole: 4 authorized, 2 denied"
    assert "unused           FnRolePolicy0 | #0 | dynamodb:DeleteItem" in text


def test_the_report_command_prints_the_merged_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path / "usage-main-1.json", _usage("arn:aws:iam::1:role/shiplane-FnRole-AAAAAAAAAAAA"))
    assert main(["report", str(tmp_path)]) == 0
    assert "shiplane-FnRole: 2 authorized, 1 denied" in capsys.readouterr().out
    assert main(["clear", str(tmp_path)]) == 0
    assert main(["report", str(tmp_path)]) == 1
