// Users of the PBX: add, edit (address, name, roles), remove.
"use strict";
const $ = (id) => document.getElementById(id);
const API = () => KT.pbxApi("/users");
let table = null;
let editing = null;

const roleNames = (roles) => roles.map((r) => KT.t("role." + r)).join(", ");
const checked = (form) => [...form.querySelectorAll("input[name=roles]:checked")].map((i) => i.value);

async function load() {
  table.set(await KT.api("GET", API()));
}

function openEdit(user) {
  editing = user.name;
  const form = $("user-edit");
  KT.formErrors(form, null);
  $("user-dialog-title").textContent = KT.t("users.edit") + " · " + user.name;
  form.email.value = user.email;
  form.full_name.value = user.full_name;
  for (const box of form.querySelectorAll("input[name=roles]")) box.checked = user.roles.includes(box.value);
  $("user-dialog").showModal();
}

async function sendReset(user) {
  if (!window.confirm(KT.t("users.reset_confirm", { name: user.name }))) return;
  try {
    const answer = await KT.api("POST", API() + "/" + encodeURIComponent(user.name) + "/reset");
    KT.toast(answer.message);
  } catch (exc) {
    KT.toast(exc.message, true);
  }
}

function openKey(user) {
  editing = user.name;
  const form = $("pgp-form");
  KT.formErrors(form, null);
  form.reset();
  $("pgp-dialog-title").textContent = KT.t("users.pgp_title") + " · " + user.name;
  $("pgp-remove").hidden = !user.pgp;
  $("pgp-dialog").showModal();
}

async function remove(user) {
  if (!window.confirm(KT.t("users.remove_confirm", { name: user.name }))) return;
  try {
    await KT.api("DELETE", API() + "/" + encodeURIComponent(user.name));
    KT.toast(KT.t("users.removed", { name: user.name }));
    await load();
  } catch (exc) {
    KT.toast(exc.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  KT.cfgPgp = Boolean(KT.pgp);
  table = KT.table($("users"), {
    columns: [
      { key: "name", label: KT.t("users.name") },
      { key: "full_name", label: KT.t("users.full_name") },
      { key: "email", label: KT.t("users.email") },
      { key: "roles", label: KT.t("users.roles"), text: (u) => roleNames(u.roles) },
      { key: "has_password", label: KT.t("users.password"), text: (u) => KT.t(u.has_password ? "users.password_set" : "users.password_none") },
      ...(KT.cfgPgp ? [{ key: "pgp", label: KT.t("users.pgp"), text: (u) => (u.pgp ? "✓" : KT.t("users.pgp_none")) }] : []),
      {
        key: "actions",
        label: "",
        sortable: false,
        csv: false,
        text: () => "",
        cell: (u) => [
          KT.el("button", { type: "button", "data-action": "edit", onclick: () => openEdit(u) }, KT.t("users.edit")),
          " ",
          KT.el("button", { type: "button", "data-action": "reset", onclick: () => sendReset(u) }, KT.t("users.send_reset")),
          " ",
          KT.cfgPgp ? [KT.el("button", { type: "button", "data-action": "pgp", onclick: () => openKey(u) }, KT.t("users.pgp")), " "] : null,
          KT.el("button", { type: "button", class: "danger", "data-action": "remove", onclick: () => remove(u) }, KT.t("users.remove")),
        ],
      },
    ],
    filter: $("users-filter"),
    csv: $("users-csv"),
    csvName: "users-" + KT.pbx + ".csv",
    empty: $("users-empty"),
  });
  load().catch((exc) => KT.toast(exc.message, true));
  $("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { name: form.name.value.trim(), email: form.email.value.trim(), full_name: form.full_name.value, roles: checked(form) };
    try {
      await KT.api("POST", API(), body);
      KT.formErrors(form, null);
      form.reset();
      KT.toast(KT.t("users.added", { name: body.name }));
      await load();
    } catch (exc) {
      KT.formErrors(form, exc);
    }
  });
  $("pgp-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const done = await KT.api("PUT", API() + "/" + encodeURIComponent(editing) + "/pgp-key", { key: form.key.value });
      $("pgp-dialog").close();
      KT.toast(KT.t("users.pgp_set", { name: editing, fingerprint: done.pgp_fingerprint }));
      await load();
    } catch (exc) {
      if (exc.params && exc.params.field === "key") exc.fields = { key: exc.message };
      KT.formErrors(form, exc);
    }
  });
  $("pgp-remove").addEventListener("click", async () => {
    try {
      await KT.api("DELETE", API() + "/" + encodeURIComponent(editing) + "/pgp-key");
      $("pgp-dialog").close();
      KT.toast(KT.t("users.pgp_removed", { name: editing }));
      await load();
    } catch (exc) {
      KT.toast(exc.message, true);
    }
  });
  $("user-edit").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { email: form.email.value.trim(), full_name: form.full_name.value, roles: checked(form) };
    try {
      await KT.api("PATCH", API() + "/" + encodeURIComponent(editing), body);
      $("user-dialog").close();
      KT.toast(KT.t("users.saved", { name: editing }));
      await load();
    } catch (exc) {
      KT.formErrors(form, exc);
    }
  });
});
