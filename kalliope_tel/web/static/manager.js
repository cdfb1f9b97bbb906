// Omnia Manager: the PBXs of the company in view (licences, modules,
// suspend, delete, "configure"), the chosen PBX's extensions (add, search,
// filter, sort, suspend, new password, delete, CSV/XLSX in, CSV out) and
// the Manager log. SIP passwords are shown once, in a dialog. Numbers,
// trunks and groups are manager_trunks.js's; the two reload each other
// through the "kt-pbxs-loaded" and "kt-trunks-changed" events.
"use strict";
const $ = (id) => document.getElementById(id);
const M = "/api/v1/manager";
const when = (iso) => (iso ? KT.localTime(iso, true) : "");
let pbxTable = null, extTable = null, logTable = null;
let pbxs = [];

const chosen = () => $("ext-pbx").value;
const extUrl = () => `${M}/pbxs/${encodeURIComponent(chosen())}/extensions`;

function showSecrets(credentials) {
  const rows = Object.entries(credentials || {});
  if (!rows.length) return;
  $("secret-table").replaceChildren(
    KT.el("thead", {}, KT.el("tr", {}, KT.el("th", { scope: "col" }, KT.t("manager.sip_login")), KT.el("th", { scope: "col" }, KT.t("manager.sip_password")))),
    KT.el("tbody", {}, rows.map(([login, secret]) => KT.el("tr", {}, KT.el("td", {}, login), KT.el("td", {}, KT.el("code", {}, secret))))),
  );
  $("secret-dialog").showModal();
}

async function act(method, path, done, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return null;
  try {
    const answer = await KT.api(method, path);
    if (done) KT.toast(done);
    await loadAll();
    return answer;
  } catch (exc) {
    KT.toast(exc.message, true);
    return null;
  }
}

function licences(used, bought) {
  return bought === null ? `${used}` : `${used} / ${bought}`;
}

function pbxActions(p) {
  const base = `${M}/pbxs/${encodeURIComponent(p.slug)}`;
  const buttons = [KT.el("button", { type: "button", onclick: () => { $("ext-pbx").value = p.slug; loadExtensions(); $("extensions").scrollIntoView(); } }, KT.t("manager.extensions"))];
  if (KT.admin) {
    buttons.push(KT.el("button", { type: "button", onclick: async () => {
      const answer = await act("POST", base + "/configure");
      if (answer) window.location.assign(answer.href);
    } }, KT.t("manager.configure")));
    buttons.push(p.suspended
      ? KT.el("button", { type: "button", onclick: () => act("POST", base + "/resume", KT.t("manager.pbx_resumed", p)) }, KT.t("console.resume"))
      : KT.el("button", { type: "button", onclick: () => act("POST", base + "/suspend", KT.t("manager.pbx_suspended", p), KT.t("manager.pbx_suspend_confirm", p)) }, KT.t("console.suspend")));
    buttons.push(KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", base, KT.t("manager.pbx_deleted", p), KT.t("manager.pbx_delete_confirm", p)) }, KT.t("console.delete")));
  }
  return KT.el("span", { class: "row-actions" }, buttons);
}

function extActions(e) {
  if (!KT.admin) return "";
  const base = `${extUrl()}/${encodeURIComponent(e.number)}`;
  const buttons = [
    e.status === "suspended"
      ? KT.el("button", { type: "button", onclick: () => act("POST", base + "/resume", KT.t("manager.ext_resumed", e)) }, KT.t("console.resume"))
      : KT.el("button", { type: "button", onclick: () => act("POST", base + "/suspend", KT.t("manager.ext_suspended", e)) }, KT.t("console.suspend")),
    KT.el("button", { type: "button", onclick: async () => {
      const answer = await act("POST", base + "/password", null, KT.t("manager.password_confirm", e));
      if (answer) showSecrets(answer.credentials);
    } }, KT.t("manager.new_password")),
    KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", base, KT.t("manager.ext_deleted", e), KT.t("manager.ext_delete_confirm", e)) }, KT.t("console.delete")),
  ];
  return KT.el("span", { class: "row-actions" }, buttons);
}

async function loadPbxs() {
  pbxs = await KT.api("GET", M + "/pbxs");
  pbxTable.set(pbxs);
  const select = $("ext-pbx");
  const keep = select.value;
  select.replaceChildren(...pbxs.map((p) => KT.el("option", { value: p.slug }, `${p.name} (${p.slug})`)));
  if (pbxs.some((p) => p.slug === keep)) select.value = keep;
  $("ext-form") && ($("ext-form").hidden = !pbxs.length);
}

async function loadExtensions() {
  if (!chosen()) { extTable.set([]); return; }
  const params = new URLSearchParams({ q: $("ext-search").value.trim() });
  if ($("ext-licence").value) params.set("licence", $("ext-licence").value);
  if ($("ext-status").value) params.set("status", $("ext-status").value);
  extTable.set(await KT.api("GET", `${extUrl()}?${params}`));
  $("ext-csv").href = `${extUrl()}.csv`;
}

async function loadAll() {
  await loadPbxs();
  await Promise.all([loadExtensions(), KT.api("GET", M + "/log").then((rows) => logTable.set(rows))]);
  // The numbers, trunks and groups (manager_trunks.js) follow the PBX list.
  document.dispatchEvent(new Event("kt-pbxs-loaded"));
}

function formJson(form) {
  const data = {};
  for (const input of form.querySelectorAll("input[name], select[name]")) {
    if (input.type === "checkbox") data[input.name] = input.checked;
    else if (input.type === "number") data[input.name] = input.value === "" ? null : Number(input.value);
    else data[input.name] = input.value.trim();
  }
  return data;
}

async function importExtensions(file) {
  const done = await KT.importFile(`${extUrl()}/import`, file, $("ext-import-errors"), (dry) => KT.t("manager.import_confirm", dry));
  if (!done) return;
  KT.toast(KT.t("manager.imported", done));
  showSecrets(done.credentials);
  await loadAll();
}

document.addEventListener("DOMContentLoaded", () => {
  pbxTable = KT.table($("pbxs-table"), {
    filter: $("pbxs-filter"), empty: $("pbxs-empty"),
    columns: [
      { key: "number", label: KT.t("manager.pbx_number"), order: (p) => String(p.number).padStart(8, "0") },
      { key: "name", label: KT.t("manager.name"), text: (p) => `${p.name} (${p.slug})` },
      { key: "status", label: KT.t("console.status"), text: (p) => KT.t("manager.status_" + p.status), cell: (p) => KT.el("span", { title: p.error || "" }, KT.t("manager.status_" + p.status)) },
      { key: "numbers", label: KT.t("manager.numbers") },
      { key: "extensions", label: KT.t("manager.extensions") },
      { key: "start_used", label: "Start", text: (p) => licences(p.start_used, p.start_licences) },
      { key: "plus_used", label: "Plus", text: (p) => licences(p.plus_used, p.plus_licences) },
      { key: "hotel_enabled", label: KT.t("manager.hotel_short"), text: (p) => KT.t(p.hotel_enabled ? "records.yes" : "records.no") },
      { key: "call_centre", label: KT.t("manager.call_centre_short"), text: (p) => KT.t(p.call_centre ? "records.yes" : "records.no") },
      { key: "actions", label: "", sortable: false, csv: false, cell: pbxActions },
    ],
  });
  extTable = KT.table($("ext-table"), {
    empty: $("ext-empty"),
    columns: [
      { key: "number", label: KT.t("manager.number"), order: (e) => e.number.padStart(8, "0") },
      { key: "first_name", label: KT.t("console.first_name"), text: (e) => e.first_name || e.name },
      { key: "last_name", label: KT.t("console.last_name") },
      { key: "email", label: KT.t("users.email") },
      { key: "licence", label: KT.t("manager.licence"), text: (e) => (e.licence === "plus" ? "Plus" : "Start") },
      { key: "meeting_id", label: KT.t("manager.meeting_id"), text: (e) => e.meeting_id || "—" },
      { key: "directory_mode", label: KT.t("manager.directory"), text: (e) => KT.t("directory.mode_" + e.directory_mode) },
      { key: "status", label: KT.t("console.status"), text: (e) => KT.t("manager.status_" + e.status) },
      { key: "actions", label: "", sortable: false, csv: false, cell: extActions },
    ],
  });
  logTable = KT.table($("log-table"), {
    filter: $("log-filter"), descending: true,
    columns: [
      { key: "id", label: KT.t("console.when"), text: (e) => when(e.at), order: (e) => e.at },
      { key: "operation", label: KT.t("console.operation"), text: (e) => KT.t(e.operation) },
      { key: "object", label: KT.t("console.object") },
      { key: "actor", label: KT.t("console.done_by") },
      { key: "ip", label: KT.t("console.ip") },
      { key: "detail", label: KT.t("manager.detail"), sortable: false, text: (e) => JSON.stringify(e.after || e.before || {}) },
    ],
  });
  $("ext-pbx").addEventListener("change", loadExtensions);
  let typing = null;
  $("ext-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(loadExtensions, 250); });
  $("ext-licence").addEventListener("change", loadExtensions);
  $("ext-status").addEventListener("change", loadExtensions);
  const pbxForm = $("pbx-form");
  if (pbxForm) pbxForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    KT.formErrors(pbxForm, null);
    try {
      const made = await KT.api("POST", M + "/pbxs", formJson(pbxForm));
      KT.toast(KT.t("manager.pbx_added", made));
      pbxForm.reset();
      await loadAll();
      $("ext-pbx").value = made.slug;
      await loadExtensions();
    } catch (exc) {
      KT.formErrors(pbxForm, exc);
    }
  });
  const extForm = $("ext-form");
  if (extForm) extForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    KT.formErrors(extForm, null);
    const data = formJson(extForm);
    const body = { number: data.number, name: data.name, licence: data.licence, pin: data.pin || null, directory_mode: data.directory_mode };
    if (data.email) body.new_user = { email: data.email, first_name: data.first_name, last_name: data.last_name };
    try {
      const made = await KT.api("POST", extUrl(), body);
      KT.toast(KT.t("manager.ext_added", made));
      extForm.reset();
      await loadAll();
      showSecrets(made.credentials);
    } catch (exc) {
      KT.formErrors(extForm, exc);
    }
  });
  if ($("ext-import")) $("ext-import").addEventListener("change", (event) => {
    if (event.target.files[0]) importExtensions(event.target.files[0]);
    event.target.value = "";
  });
  // A change of numbers, trunks or groups: the PBX list's totals and the log follow.
  document.addEventListener("kt-trunks-changed", () => loadAll().catch((exc) => KT.toast(exc.message, true)));
  loadAll().catch((exc) => KT.toast(exc.message, true));
});
