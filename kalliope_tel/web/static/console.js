// The Admin Console: the company chooser, and in the view the dashboard,
// customers, users (invite, CSV in and out) and the log with its detail.
"use strict";
const $ = (id) => document.getElementById(id);
const C = "/api/v1/console";

// A refusal under the field it names (params.field), else as a toast.
function refuse(form, exc) {
  if (exc.params && exc.params.field && !Object.keys(exc.fields).length) exc.fields = { [exc.params.field]: exc.message };
  KT.formErrors(form, exc);
}

const fullName = (u) => [u.first_name, u.last_name].filter(Boolean).join(" ");
const when = (iso) => (iso ? KT.localTime(iso, true) : "");

async function act(method, path, done, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  try {
    await KT.api(method, path);
    if (done) KT.toast(done);
    await loadAll();
  } catch (exc) {
    KT.toast(exc.message, true);
  }
}

// ------------------------------------------------------------ dashboard
function card(label, figures, extra) {
  const change = figures.change === null ? "—" : (figures.change > 0 ? "+" : "") + figures.change + "%";
  return KT.el("div", { class: "figure" }, KT.el("span", { class: "label" }, label), KT.el("strong", {}, String(figures.total)),
    KT.el("span", { class: "change", title: KT.t("console.vs_previous") }, change), extra || null);
}

function pie(start, plus) {
  const total = start + plus;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "-1 -1 2 2");
  svg.setAttribute("class", "pie");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", KT.t("console.licences_pie", { start, plus }));
  const circle = (cls) => {
    const c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    c.setAttribute("r", "1");
    c.setAttribute("class", cls);
    return c;
  };
  svg.append(circle(total ? "start" : "none"));
  if (total && plus) {
    const angle = (plus / total) * 2 * Math.PI;
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    const large = angle > Math.PI ? 1 : 0;
    path.setAttribute("d", `M0 0 L1 0 A1 1 0 ${large} 1 ${Math.cos(angle)} ${Math.sin(angle)} Z`);
    path.setAttribute("class", "plus");
    svg.append(total === plus ? circle("plus") : path);
  }
  return svg;
}

function chart(points) {
  const w = 640, h = 160, pad = 24;
  const max = Math.max(1, ...points.map((p) => p.customers));
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => h - pad - (v * (h - 2 * pad)) / max;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", KT.t("console.acquired"));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) => `${x(i)},${y(p.customers)}`).join(" "));
  line.setAttribute("class", "line");
  svg.append(line);
  points.forEach((p, i) => {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x(i));
    dot.setAttribute("cy", y(p.customers));
    dot.setAttribute("r", "3");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${p.month}: ${p.customers}`;
    dot.append(title);
    svg.append(dot);
    if (i % 2 === points.length % 2 || points.length < 8) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", x(i));
      label.setAttribute("y", h - 6);
      label.textContent = p.month.slice(2);
      svg.append(label);
    }
  });
  // The figures as a table too, for screen readers and for copying.
  const table = KT.el("table", { class: "visually-hidden" }, KT.el("tbody", {}, points.map((p) => KT.el("tr", {}, KT.el("th", {}, p.month), KT.el("td", {}, String(p.customers))))));
  return [svg, table];
}

async function loadDashboard() {
  const d = await KT.api("GET", C + "/dashboard");
  const cards = [];
  if (d.customers) cards.push(card(KT.t("console.customers"), d.customers));
  cards.push(card(KT.t("console.pbxs"), d.pbxs));
  cards.push(card(KT.t("console.licences"), d.licences, KT.el("div", { class: "pie-box" }, pie(d.licences.start, d.licences.plus),
    KT.el("span", {}, KT.t("console.licences_pie", { start: d.licences.start, plus: d.licences.plus })))));
  $("dashboard-cards").replaceChildren(...cards);
  // Customers acquired: a partner's figure; a customer's view has none.
  $("dashboard-acquired").hidden = !d.customers;
  $("dashboard-chart").replaceChildren(...(d.customers ? chart(d.acquired) : []));
}

// ------------------------------------------------------------ customers
let customers = null;
function customerActions(c) {
  const id = c.id;
  const buttons = [KT.el("button", { type: "button", onclick: () => switchView(id) }, KT.t("console.open_view"))];
  if (KT.admin) {
    buttons.push(c.status === "active"
      ? KT.el("button", { type: "button", onclick: () => act("POST", `${C}/customers/${id}/suspend`, KT.t("console.suspended", { name: c.legal_name }), KT.t("console.suspend_confirm", { name: c.legal_name })) }, KT.t("console.suspend"))
      : KT.el("button", { type: "button", onclick: () => act("POST", `${C}/customers/${id}/resume`, KT.t("console.resumed", { name: c.legal_name })) }, KT.t("console.resume")));
    buttons.push(KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", `${C}/customers/${id}`, KT.t("console.deleted", { name: c.legal_name }), KT.t("console.delete_confirm", { name: c.legal_name, pbxs: c.pbxs })) }, KT.t("console.delete")));
  }
  return KT.el("span", { class: "row-actions" }, buttons);
}

// ------------------------------------------------------------ users
let users = null;
let allUsers = [];
function userActions(u) {
  // Nobody demotes, suspends, deletes or resets themselves here (another administrator can).
  if (!KT.admin || u.id === KT.account) return "";
  const base = `${C}/users/${u.id}`;
  const buttons = [];
  if (u.status === "invited") buttons.push(KT.el("button", { type: "button", onclick: () => act("POST", base + "/invite", KT.t("console.invite_sent", { email: u.email })) }, KT.t("console.resend")));
  if (u.second_factor) buttons.push(KT.el("button", { type: "button", onclick: () => act("POST", base + "/second-factor/reset", KT.t("console.factor_reset", { email: u.email }), KT.t("console.factor_confirm", { email: u.email })) }, KT.t("console.reset_factor")));
  if (u.status !== "invited") {
    const next = u.status === "suspended" ? "active" : "suspended";
    buttons.push(KT.el("button", { type: "button", onclick: async () => {
      try { await KT.api("PATCH", base, { status: next }); await loadAll(); } catch (exc) { KT.toast(exc.message, true); }
    } }, KT.t(next === "active" ? "console.resume" : "console.suspend")));
  }
  buttons.push(KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", base, KT.t("console.user_deleted", { email: u.email }), KT.t("console.user_delete_confirm", { email: u.email })) }, KT.t("console.delete")));
  return KT.el("span", { class: "row-actions" }, buttons);
}

function showUsers() {
  const status = $("users-status").value;
  users.set(allUsers.filter((u) => !status || u.status === status));
}

async function importUsers(file) {
  const done = await KT.importFile(`${C}/users.csv`, file, $("import-errors"), (dry) => KT.t("console.import_confirm", dry));
  if (!done) return;
  KT.toast(KT.t("console.imported", done));
  await loadAll();
}

// ------------------------------------------------------------ log
let log = null;
function showEntry(e) {
  $("log-dialog-title").textContent = `${KT.t(e.operation)} · ${e.object}`;
  const keys = [...new Set([...Object.keys(e.before || {}), ...Object.keys(e.after || {})])];
  const value = (v) => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  $("log-detail").replaceChildren(
    KT.el("thead", {}, KT.el("tr", {}, KT.el("th", { scope: "col" }, KT.t("console.field")), KT.el("th", { scope: "col" }, KT.t("console.before")), KT.el("th", { scope: "col" }, KT.t("console.after")))),
    KT.el("tbody", {}, keys.map((k) => KT.el("tr", {}, KT.el("th", { scope: "row" }, k), KT.el("td", {}, value((e.before || {})[k])), KT.el("td", {}, value((e.after || {})[k]))))),
  );
  $("log-dialog").showModal();
}

async function switchView(company) {
  await KT.api("POST", "/api/v1/session/view", { company });
  window.location.assign("/console");
}

async function loadAll() {
  const work = [loadDashboard()];
  if (customers) work.push(KT.api("GET", C + "/customers").then((rows) => customers.set(rows)));
  work.push(KT.api("GET", C + "/users").then((rows) => { allUsers = rows; showUsers(); }));
  work.push(KT.api("GET", C + "/log").then((rows) => log.set(rows)));
  await Promise.all(work);
}

function formJson(form) {
  const data = {};
  for (const input of form.querySelectorAll("input[name], select[name]")) {
    if (input.type === "checkbox") data[input.name] = input.checked;
    else if (input.tagName === "SELECT") data[input.name] = input.value || null;
    else data[input.name] = input.value.trim();
  }
  return data;
}

function submitter(form, path, message, then) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    KT.formErrors(form, null);
    try {
      const made = await KT.api("POST", path, formJson(form));
      KT.toast(KT.t(message, made));
      if (then) then(made);
      form.reset();
      await loadAll();
    } catch (exc) {
      refuse(form, exc);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("#chooser [data-company]"))
    button.addEventListener("click", async () => {
      await KT.api("POST", "/api/v1/session/company", { company: Number(button.dataset.company) });
      window.location.assign("/console");
    });
  if (!KT.chosen) return;
  if ($("customers-table"))
    customers = KT.table($("customers-table"), {
      filter: $("customers-filter"), empty: $("customers-empty"),
      columns: [
        { key: "legal_name", label: KT.t("company.legal_name_label") },
        { key: "customer_code", label: KT.t("company.code_label") },
        { key: "fiscal_code", label: KT.t("company.fiscal_label") },
        { key: "vat_number", label: KT.t("company.vat_label") },
        { key: "status", label: KT.t("console.status"), text: (c) => KT.state(c.status) },
        { key: "pbxs", label: KT.t("console.pbxs") },
        { key: "actions", label: "", sortable: false, csv: false, cell: customerActions },
      ],
    });
  users = KT.table($("users-table"), {
    filter: $("users-filter"), empty: $("users-empty"),
    columns: [
      { key: "first_name", label: KT.t("console.first_name") },
      { key: "last_name", label: KT.t("console.last_name") },
      { key: "email", label: KT.t("users.email") },
      { key: "created_at", label: KT.t("console.created"), text: (u) => when(u.created_at), order: (u) => u.created_at },
      { key: "status", label: KT.t("console.status"), text: (u) => KT.state(u.status) },
      { key: "actions", label: "", sortable: false, csv: false, cell: userActions },
    ],
  });
  $("users-status").addEventListener("change", showUsers);
  log = KT.table($("log-table"), {
    filter: $("log-filter"), descending: true,
    columns: [
      { key: "id", label: KT.t("console.when"), text: (e) => when(e.at), order: (e) => e.at, cell: (e) => KT.el("button", { type: "button", class: "link", onclick: () => showEntry(e) }, when(e.at)) },
      { key: "operation", label: KT.t("console.operation"), text: (e) => KT.t(e.operation) },
      { key: "object", label: KT.t("console.object") },
      { key: "actor", label: KT.t("console.done_by") },
      { key: "ip", label: KT.t("console.ip") },
    ],
  });
  // A new customer joins the view menu at once.
  const addView = (made) => {
    const menu = $("view-switch");
    if (menu) menu.append(KT.el("option", { value: `${KT.company}:${made.id}` }, made.legal_name));
  };
  if ($("customer-form")) submitter($("customer-form"), C + "/customers", "console.customer_added", addView);
  if ($("invite-form")) submitter($("invite-form"), C + "/users", "console.invited");
  if ($("users-import")) $("users-import").addEventListener("change", (event) => {
    if (event.target.files[0]) importUsers(event.target.files[0]);
    event.target.value = "";
  });
  loadAll().catch((exc) => KT.toast(exc.message, true));
});
