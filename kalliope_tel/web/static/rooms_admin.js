// Rooms of the hotel: add (new SIP passwords shown once), edit, remove, import with a preview.
"use strict";
const $ = (id) => document.getElementById(id);
const API = () => KT.pbxApi("/room-config");
let table = null;
let editing = null;

function showSecrets(credentials) {
  const entries = Object.entries(credentials || {});
  if (!entries.length) return;
  $("secrets").replaceChildren(
    KT.el("thead", {}, KT.el("tr", {}, KT.el("th", { scope: "col" }, KT.t("roomsadmin.account")), KT.el("th", { scope: "col" }, KT.t("users.password")))),
    KT.el("tbody", {}, entries.map(([user, secret]) => KT.el("tr", {}, KT.el("td", {}, user), KT.el("td", {}, KT.el("code", {}, secret))))),
  );
  $("secrets-dialog").showModal();
}

async function load() {
  const data = await KT.api("GET", API());
  for (const id of ["r-template", "e-template"]) {
    const select = $(id);
    const keep = select.value;
    select.replaceChildren(...data.templates.map((name) => KT.el("option", { value: name }, name)));
    if (keep) select.value = keep;
  }
  table.set(data.rooms);
}

function openEdit(room) {
  editing = room.extension;
  const form = $("room-edit");
  KT.formErrors(form, null);
  $("room-dialog-title").textContent = KT.t("room.title") + " " + room.extension;
  form.name.value = room.name;
  form.template.value = room.template;
  form.building.value = room.building;
  form.floor.value = room.floor;
  $("room-dialog").showModal();
}

async function remove(room) {
  if (!window.confirm(KT.t("roomsadmin.remove_confirm", { room: room.extension }))) return;
  try {
    await KT.api("DELETE", API() + "/" + encodeURIComponent(room.extension));
    KT.toast(KT.t("roomsadmin.removed", { room: room.extension }));
    await load();
  } catch (exc) {
    KT.toast(exc.message, true);
  }
}

async function runImport(apply) {
  const form = $("import-form");
  const body = new FormData(form);
  body.set("apply", apply ? "true" : "false");
  const result = $("import-result");
  try {
    const report = await KT.api("POST", API() + "/import", body);
    const lines = report.errors.map((e) => KT.el("li", { "data-line": e.line }, KT.t("roomsadmin.line", { line: e.line }) + ": " + e.reason));
    const summary = report.applied
      ? KT.t("roomsadmin.imported", { count: report.valid })
      : report.errors.length
        ? KT.t("roomsadmin.import_errors", { count: report.errors.length, rows: report.rows })
        : KT.t("roomsadmin.import_ready", { count: report.valid });
    result.replaceChildren(KT.el("p", { class: report.errors.length ? "error" : "" }, summary), lines.length ? KT.el("ol", { class: "import-errors" }, lines) : "");
    $("import-apply").disabled = report.applied || report.errors.length > 0;
    if (report.applied) {
      form.reset();
      showSecrets(report.credentials);
      await load();
    }
  } catch (exc) {
    result.replaceChildren(KT.el("p", { class: "error" }, exc.message));
    $("import-apply").disabled = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("template-csv").href = API() + "/import-template.csv";
  $("template-xlsx").href = API() + "/import-template.xlsx";
  table = KT.table($("rooms"), {
    columns: [
      { key: "extension", label: KT.t("roomsadmin.extension") },
      { key: "name", label: KT.t("roomsadmin.name") },
      { key: "template", label: KT.t("roomsadmin.template") },
      { key: "building", label: KT.t("panel.building") },
      { key: "floor", label: KT.t("panel.floor") },
      { key: "accounts", label: KT.t("roomsadmin.accounts"), text: (r) => r.accounts.join(", ") },
      { key: "occupied", label: KT.t("roomsadmin.state"), text: (r) => KT.t(r.occupied ? "panel.occupied" : "panel.free") },
      {
        key: "actions", label: "", sortable: false, csv: false, text: () => "",
        cell: (r) => [
          KT.el("button", { type: "button", "data-action": "edit", onclick: () => openEdit(r) }, KT.t("users.edit")),
          " ",
          KT.el("button", { type: "button", class: "danger", "data-action": "remove", onclick: () => remove(r) }, KT.t("users.remove")),
        ],
      },
    ],
    filter: $("rooms-filter"),
    csv: $("rooms-csv"),
    csvName: "rooms-" + KT.pbx + ".csv",
    empty: $("rooms-empty"),
  });
  load().catch((exc) => KT.toast(exc.message, true));
  $("room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = {
      extension: form.extension.value.trim(), name: form.name.value, template: form.template.value,
      building: form.building.value, floor: form.floor.value, new_accounts: Number(form.new_accounts.value || 0),
    };
    try {
      const room = await KT.api("POST", API(), body);
      KT.formErrors(form, null);
      form.reset();
      KT.toast(KT.t("roomsadmin.added", { room: room.extension }));
      showSecrets(room.credentials);
      await load();
    } catch (exc) {
      KT.formErrors(form, exc);
    }
  });
  $("room-edit").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { name: form.name.value, template: form.template.value, building: form.building.value, floor: form.floor.value };
    try {
      await KT.api("PATCH", API() + "/" + encodeURIComponent(editing), body);
      $("room-dialog").close();
      KT.toast(KT.t("roomsadmin.saved", { room: editing }));
      await load();
    } catch (exc) {
      KT.formErrors(form, exc);
    }
  });
  $("import-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runImport(false);
  });
  $("i-file").addEventListener("change", () => ($("import-apply").disabled = true));
  $("import-apply").addEventListener("click", () => runImport(true));
});
