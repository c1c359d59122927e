"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright):
a tenanted project's grid, live refresh after a push, a pending approval, and the
deployment page with its timeline. Served by the API through `shiplane dashboard`'s
signing proxy, as a user would open it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from shiplane.adapters.dynamodb import DynamoStore
from shiplane_local.api_client import ApiClient, local_credentials
from shiplane_local.cloud import LocalCloud
from shiplane_local.dashboard_proxy import DashboardProxy
from tests.e2e.release_model_fixtures import World, environments, phase

AUTO, MANUAL = "automatic", "manual"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the page may take to show a change: two refreshes (3 s each) and the rollout.
LIVE_MS = 45_000  # generous: two e2e workers share the machine


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def proxy(cloud: LocalCloud) -> Iterator[DashboardProxy]:
    running = DashboardProxy(ApiClient(cloud.api_url, local_credentials())).start()
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def tenanted_world(cloud: LocalCloud, store: DynamoStore) -> tuple[World, list[str]]:
    w = World(cloud, store, "d")
    tenants = [f"gold-{w.id}", f"silver-{w.id}", f"bronze-{w.id}"]
    lifecycle = f"lc-{w.id}"
    tenanted = {"tenanted_mode": "tenanted"}
    w.apply(
        {
            "environments": environments("dev", "test", "prod", approval=("prod",)),
            "lifecycles": [
                {
                    "name": lifecycle,
                    "phases": [
                        phase("development", ("dev", AUTO)),
                        phase("testing", ("test", AUTO)),
                        phase("production", ("prod", MANUAL)),
                    ],
                }
            ],
            "targets": [w.target(e, **tenanted) for e in ("dev", "test", "prod")],
            "projects": [w.project_document(lifecycle, tenanted_mode="tenanted")],
            "tenants": [
                {"name": tenants[0], "projects": {w.project: ["dev", "test", "prod"]}},
                {"name": tenants[1], "projects": {w.project: ["dev", "test", "prod"]}},
                # not connected to test
                {"name": tenants[2], "projects": {w.project: ["dev", "prod"]}},
            ],
        }
    )
    return w, tenants


def cell(page: Page, project: str, tenant: str, environment: str) -> Any:
    return page.locator(
        f'section[data-project="{project}"] tr[data-tenant="{tenant}"] '
        f'td[data-environment="{environment}"]'
    )


def test_the_dashboard_shows_a_tenanted_project_and_refreshes_live(
    cloud: LocalCloud, store: DynamoStore, proxy: DashboardProxy, page: Page
) -> None:
    w, (gold, silver, bronze) = tenanted_world(cloud, store)
    w.push("1.0.0")

    page.goto(proxy.url)
    section = page.locator(f'section[data-project="{w.project}"]')
    expect(section).to_be_visible(timeout=LIVE_MS)
    expect(section.locator("thead th")).to_have_text(["tenant", "dev", "test", "prod"])
    expect(section.locator("tbody tr")).to_have_count(3)
    for tenant in (gold, silver):
        for environment in ("dev", "test"):
            expect(cell(page, w.project, tenant, environment)).to_contain_text("1.0.0")
            expect(cell(page, w.project, tenant, environment)).to_contain_text("succeeded")
        # prod is manual: nothing there yet.
        expect(cell(page, w.project, tenant, "prod")).to_have_text("—")
    row = section.locator(f'tr[data-tenant="{bronze}"]')
    expect(row.locator("td").nth(1)).to_have_text("not connected")

    # A push while the page is open: the grid follows without a reload.
    w.push("1.1.0", settle=False)
    expect(cell(page, w.project, gold, "dev")).to_contain_text("1.1.0", timeout=LIVE_MS)
    w.settle()
    expect(cell(page, w.project, silver, "test")).to_contain_text("1.1.0", timeout=LIVE_MS)
    expect(cell(page, w.project, silver, "test")).to_contain_text("succeeded", timeout=LIVE_MS)

    # prod needs approval: the page lists it and marks the cell.
    # (Not settled: the execution waits on the approval's task token.)
    w.start(
        {
            "action": "deploy",
            "project": w.project,
            "release": "1.1.0",
            "environment": "prod",
            "tenant": gold,
        },
        settle=False,
    )
    approvals = page.locator("#approval-list li")
    expect(approvals).to_contain_text([f"{w.project} 1.1.0 → prod ({gold})"], timeout=LIVE_MS)
    expect(cell(page, w.project, gold, "prod")).to_contain_text("awaiting approval")

    # The deployment page: its timeline, from the link in the grid.
    cell(page, w.project, gold, "dev").locator("a.status").click()
    expect(page.locator("#title")).to_have_text(f"{w.project} 1.1.0 → dev", timeout=LIVE_MS)
    expect(page.locator('[data-fact="status"]')).to_have_text("SUCCEEDED")
    expect(page.locator('[data-fact="tenant"]')).to_have_text(gold)
    expect(page.locator("#timeline li").first).to_be_visible()
    assert page.locator("#timeline li").count() >= 3
    expect(page.locator("#error")).to_be_hidden()


def test_the_dashboard_is_read_only_and_the_api_needs_a_signature(
    cloud: LocalCloud, proxy: DashboardProxy
) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        proxy.url.replace("/dashboard", "/configuration"), data=b"{}", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    # The API itself refuses unsigned requests, as API Gateway's AWS_IAM does.
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(cloud.api_url + "status", timeout=10)
    assert unsigned.value.code == 403
