// Lictor dashboard: the live feed (server-sent events) and confirmations for
// destructive buttons. Same-origin file only; the page's CSP forbids inline script.
"use strict";

function cell(row, text, className) {
  const td = document.createElement("td");
  if (className) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    td.appendChild(span);
  } else {
    td.textContent = text;
  }
  row.appendChild(td);
  return td;
}

function startFeed(table) {
  const body = table.querySelector("tbody");
  const status = document.getElementById("feed-status");
  const withRecords = table.dataset.records === "1";
  const source = new EventSource(table.dataset.stream);
  source.onopen = () => { status.textContent = "Live: new decisions appear at the top."; };
  source.onerror = () => { status.textContent = "Disconnected; reconnecting…"; };
  source.addEventListener("decision", (event) => {
    const item = JSON.parse(event.data);
    const row = document.createElement("tr");
    row.className = "fresh";
    row.dataset.decision = item.decision_id || "";
    const time = cell(row, item.at || "");
    if (withRecords) {
      time.textContent = "";
      const link = document.createElement("a");
      link.href = "/ui/audit/records/" + item.seq;
      link.textContent = item.at || String(item.seq);
      time.appendChild(link);
    }
    cell(row, item.agent_id || "");
    cell(row, item.principal || "—");
    cell(row, item.tool || "");
    cell(row, item.outcome || "", "badge b-" + (item.outcome || ""));
    cell(row, (item.rules || []).join(", "));
    cell(row, item.task || "");
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 200) { body.deleteRow(body.rows.length - 1); }
    if (item.missed) { status.textContent = item.missed + " decisions were skipped (too many at once)."; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const feed = document.getElementById("feed");
  if (feed) { startFeed(feed); }
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
});
