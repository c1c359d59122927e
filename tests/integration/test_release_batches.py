"""A push to many tenants: the release's first deployments are written in batches of
DEPLOYMENTS_PER_TRANSACTION (DynamoDB takes 100 items per transaction, three per
deployment), and a retry after the writer stopped between two batches writes the rest."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.services.apply_configuration import apply_configuration
from shiplane.services.resolve_release import (
    DEPLOYMENTS_PER_TRANSACTION,
    ResolveDependencies,
    resolve_release,
)
from tests.helpers import demo_configuration, ecr_push
from tests.integration.pipeline_harness import DIGEST_1, NoRegistry

TENANTS = 2 * DEPLOYMENTS_PER_TRANSACTION + 15  # three batches in dev


@pytest.fixture
def tenanted(store: DynamoStore) -> DynamoStore:
    document = demo_configuration()
    for target in document["targets"]:
        target["tenanted_mode"] = "tenanted"
    document["projects"][0]["tenanted_mode"] = "tenanted"
    document["tenants"] = [
        {"name": f"t{i:03d}", "projects": {"web": ["dev", "test", "prod"]}} for i in range(TENANTS)
    ]
    apply_configuration(document, store)
    return store


class StopsAfterBatches:
    """The store, failing the Nth create_deployments call (the writer stops there)."""

    def __init__(self, store: DynamoStore, fail_at: int) -> None:
        self._store, self._fail_at, self.calls = store, fail_at, 0

    def create_deployments(self, deployments: Any, claims: Any) -> bool:
        self.calls += 1
        if self.calls == self._fail_at:
            raise RuntimeError("the function stopped between two batches")
        return self._store.create_deployments(deployments, claims)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def resolve(deps: ResolveDependencies, execution: str) -> list[dict[str, Any]]:
    payload = {"input": ecr_push("web", "1.0.0", DIGEST_1), "execution": execution}
    return resolve_release(payload, deps).model_dump(mode="json")["deployments"]


def test_a_push_to_many_tenants_writes_every_deployment(tenanted: DynamoStore, clock: Any) -> None:
    deps = ResolveDependencies(tenanted, tenanted, tenanted, NoRegistry(), clock)
    tasks = resolve(deps, "exec-1")
    assert len(tasks) == TENANTS
    deployments = tenanted.list_deployments("web")
    assert sorted(d.tenant for d in deployments) == [f"t{i:03d}" for i in range(TENANTS)]
    assert {d.environment for d in deployments} == {"dev"}
    [release] = tenanted.list_releases("web")
    assert release.first_deployments == TENANTS
    assert len(tenanted.claimed_places("web", "1.0.0")) == TENANTS


def test_a_retry_after_a_stop_between_batches_writes_the_rest(
    tenanted: DynamoStore, clock: Any
) -> None:
    # the release and its first batch are one transaction, the 2nd batch is the first
    # create_deployments: failing the 2nd of those stops the writer after two batches
    stopping = StopsAfterBatches(tenanted, fail_at=2)
    deps = ResolveDependencies(tenanted, tenanted, stopping, NoRegistry(), clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        resolve(deps, "exec-1")
    assert len(tenanted.list_deployments("web")) == 2 * DEPLOYMENTS_PER_TRANSACTION

    # the state machine retries the step (same execution): it resumes the written ones
    # and writes the others, each once
    tasks = resolve(ResolveDependencies(tenanted, tenanted, tenanted, NoRegistry(), clock),
                    "exec-1")  # fmt: skip
    assert len(tasks) == TENANTS
    assert len({t["deployment_id"] for t in tasks}) == TENANTS
    assert len(tenanted.list_deployments("web")) == TENANTS

    # a duplicate delivery of the push (another execution) finds nothing left to do
    assert resolve(ResolveDependencies(tenanted, tenanted, tenanted, NoRegistry(), clock),
                   "exec-2") == []  # fmt: skip
    assert len(tenanted.list_deployments("web")) == TENANTS


def test_a_duplicate_delivery_writes_what_a_stopped_writer_left(
    tenanted: DynamoStore, clock: Any
) -> None:
    stopping = StopsAfterBatches(tenanted, fail_at=1)  # the release and its first batch only
    deps = ResolveDependencies(tenanted, tenanted, stopping, NoRegistry(), clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        resolve(deps, "exec-1")

    # another execution (a duplicate push) runs the deployments no one wrote; exec-1's
    # retry then resumes its own first batch: every tenant is deployed once
    theirs = resolve(ResolveDependencies(tenanted, tenanted, tenanted, NoRegistry(), clock),
                     "exec-2")  # fmt: skip
    mine = resolve(ResolveDependencies(tenanted, tenanted, tenanted, NoRegistry(), clock),
                   "exec-1")  # fmt: skip
    assert len(theirs) == TENANTS - DEPLOYMENTS_PER_TRANSACTION
    assert len(mine) == DEPLOYMENTS_PER_TRANSACTION
    assert {t["tenant"] for t in theirs}.isdisjoint({t["tenant"] for t in mine})
    assert len(tenanted.list_deployments("web")) == TENANTS
