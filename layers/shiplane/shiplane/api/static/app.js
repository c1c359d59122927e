// Shiplane's dashboard: polls the API (same origin, relative paths) and redraws.
// Text only goes through textContent: nothing the API returns is parsed as HTML.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const FINISHED = ["SUCCEEDED", "FAILED", "REJECTED", "SKIPPED", "CANCELLED"];

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function showError(message) {
    const error = document.getElementById("error");
    error.textContent = message;
    error.hidden = !message;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`${response.status} ${body.code || ""}: ${body.message || ""}`);
    return body;
  }

  function stamp() {
    document.getElementById("updated").textContent =
      "updated " + new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  // ------------------------------------------------------------------ status page
  function statusCell(project, cell) {
    const td = el("td", { "data-environment": cell.environment });
    const latest = cell.latest;
    const running = cell.current_release;
    if (!latest && !running) {
      td.appendChild(el("span", { class: "empty", text: "—" }));
      return td;
    }
    const shown = latest ? latest.release : running;
    td.appendChild(el("span", { class: "release", text: shown }));
    if (latest) {
      const link = el("a", {
        class: "status status-" + latest.status,
        href: `dashboard/deployments/${encodeURIComponent(project)}/${encodeURIComponent(latest.id)}`,
        text: latest.status.toLowerCase(),
      });
      td.appendChild(document.createTextNode(" "));
      td.appendChild(link);
    }
    if (running && latest && running !== latest.release) {
      td.appendChild(el("div", { class: "muted", text: "running " + running }));
    }
    if (cell.awaiting_approval) td.appendChild(el("span", { class: "badge badge-approval", text: "awaiting approval" }));
    if (cell.queued) td.appendChild(el("span", { class: "badge", text: `${cell.queued} queued` }));
    if (cell.drift && cell.drift.length) {
      td.appendChild(el("span", { class: "badge badge-drift", title: cell.drift.join("; "), text: "drift" }));
    }
    return td;
  }

  function projectTable(project) {
    const section = el("section", { class: "project", "data-project": project.name });
    section.appendChild(el("h2", { text: project.name }));
    const head = el("tr", {}, [el("th", { text: project.tenanted_mode === "untenanted" ? "" : "tenant" })]);
    for (const environment of project.environments) head.appendChild(el("th", { text: environment }));
    const body = el("tbody");
    for (const row of project.rows) {
      const tr = el("tr", { "data-tenant": row.tenant }, [el("th", { text: row.tenant === "untenanted" ? "" : row.tenant })]);
      const byEnvironment = Object.fromEntries(row.cells.map((c) => [c.environment, c]));
      for (const environment of project.environments) {
        const cell = byEnvironment[environment];
        tr.appendChild(cell ? statusCell(project.name, cell) : el("td", { class: "empty", text: "not connected" }));
      }
      body.appendChild(tr);
    }
    section.appendChild(el("table", { class: "grid" }, [el("thead", {}, [head]), body]));
    return section;
  }

  async function refreshStatus() {
    try {
      const data = await getJson("status");
      const projects = document.getElementById("projects");
      projects.replaceChildren(...data.projects.map(projectTable));
      const approvals = data.projects.flatMap((p) => p.pending_approvals.map((a) => ({ project: p.name, ...a })));
      const list = document.getElementById("approval-list");
      list.replaceChildren(
        ...approvals.map((a) =>
          el("li", {}, [
            el("a", {
              href: `dashboard/deployments/${encodeURIComponent(a.project)}/${encodeURIComponent(a.deployment_id)}`,
              text: `${a.project} ${a.release} → ${a.environment}` + (a.tenant === "untenanted" ? "" : ` (${a.tenant})`),
            }),
          ])
        )
      );
      document.getElementById("approvals").hidden = approvals.length === 0;
      showError("");
      stamp();
    } catch (error) {
      showError("Could not load the status: " + error.message);
    }
  }

  // ------------------------------------------------------------------ deployment page
  async function refreshDeployment() {
    const parts = location.pathname.split("/").filter(Boolean);
    const [project, id] = parts.slice(-2).map(decodeURIComponent);
    try {
      const d = await getJson(`../../../projects/${encodeURIComponent(project)}/deployments/${encodeURIComponent(id)}`);
      document.getElementById("title").textContent = `${d.project} ${d.release} → ${d.environment}`;
      const summary = document.getElementById("summary");
      const facts = [
        ["status", d.status],
        ["release", d.release],
        ["environment", d.environment],
        ["tenant", d.tenant],
        ["mode", d.mode],
        ["triggered by", d.triggered_by ? `${d.triggered_by.kind}: ${d.triggered_by.by}` : ""],
        ["created", d.created_at],
        ["finished", d.finished_at || "—"],
        ["reason", d.reason || "—"],
      ];
      summary.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k, text: String(v) })]));
      document.getElementById("timeline").replaceChildren(
        ...(d.timeline || []).map((t) => el("li", { text: `${t.at.slice(11, 19)}  ${t.message}` }))
      );
      const diagnosis = d.diagnosis || {};
      const groups = [
        ["Stopped tasks", diagnosis.stopped_tasks],
        ["Service events", diagnosis.service_events],
        ["Stack events", diagnosis.stack_events],
      ].filter(([, items]) => items && items.length);
      document.getElementById("diagnosis").hidden = groups.length === 0;
      document.getElementById("diagnosis-body").replaceChildren(
        ...groups.flatMap(([title, items]) => [el("h3", { text: title }), el("ul", {}, items.map((i) => el("li", { text: i })))])
      );
      showError("");
      stamp();
      return FINISHED.includes(d.status);
    } catch (error) {
      showError("Could not load the deployment: " + error.message);
      return false;
    }
  }

  const page = document.body.dataset.page;
  if (page === "status") {
    refreshStatus();
    setInterval(refreshStatus, REFRESH_MS);
  } else if (page === "deployment") {
    const timer = setInterval(async () => {
      if (await refreshDeployment()) clearInterval(timer);
    }, REFRESH_MS);
    refreshDeployment();
  }
})();
