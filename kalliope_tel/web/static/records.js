// An administration page the server describes (kalliope_tel/web/records.py):
// sections of records (a form to add, a list to sort, filter and download,
// a dialog to edit, remove, the row's own actions) or a settings form.
// Every label comes from the catalogue; every refusal lands on its field.
"use strict";

const RECORDS = {
  // The options of a select or a set of check boxes: fixed ones (labelled
  // from the catalogue) or a list the page was given (the PBX's classes...).
  options(field) {
    if (field.options.length) return field.options.map(([value, key]) => [value, KT.t(key)]);
    return (KT.choices[field.choices] || []).map((value) => [value, value]);
  },

  // The controls of one field, with their label (ids unique per form).
  control(form, field) {
    const id = form + "-" + field.name.replace(/[^a-zA-Z0-9_-]/g, "_");
    const base = { id, name: field.name, required: field.required || null };
    if (field.kind === "bool")
      return [KT.el("label", { class: "check span", for: id }, KT.el("input", { id, name: field.name, type: "checkbox" }), " ", KT.t(field.label))];
    if (field.kind === "multi")
      return [
        KT.el(
          "fieldset",
          { class: "roles span", "data-name": field.name },
          KT.el("legend", {}, KT.t(field.label)),
          RECORDS.options(field).map(([value, text]) =>
            KT.el("label", { class: "check" }, KT.el("input", { type: "checkbox", name: field.name, value }), " ", text),
          ),
        ),
      ];
    let input;
    if (field.kind === "select") {
      const blank = field.required ? [] : [KT.el("option", { value: "" }, "—")];
      input = KT.el("select", base, blank, RECORDS.options(field).map(([value, text]) => KT.el("option", { value }, text)));
    } else if (field.kind === "textarea" || field.kind === "lines") {
      input = KT.el("textarea", Object.assign(base, { rows: 4, maxlength: field.maxlength }));
    } else {
      const type = { number: "number", time: "time", date: "date", email: "email", tel: "tel", secret: "password" }[field.kind] || "text";
      input = KT.el(
        "input",
        Object.assign(base, { type, min: field.low, max: field.high, maxlength: field.maxlength, autocomplete: field.kind === "secret" ? "new-password" : "off" }),
      );
    }
    const hint = field.hint ? KT.el("span", { class: "hint", id: id + "-hint" }, KT.t(field.hint)) : null;
    if (hint) input.setAttribute("aria-describedby", hint.id);
    return [KT.el("label", { for: id }, KT.t(field.label)), input, hint];
  },

  form(id, fields, button) {
    return KT.el(
      "form",
      { id, class: "form-grid", method: "post", novalidate: null },
      fields.filter((f) => f.form).flatMap((f) => RECORDS.control(id, f)),
      KT.el("button", { type: "submit", class: "primary" }, button),
    );
  },

  // What the form holds, typed as the API wants it.
  read(form, fields) {
    const body = {};
    for (const field of fields) {
      if (field.kind === "multi") {
        body[field.name] = [...form.querySelectorAll('input[name="' + CSS.escape(field.name) + '"]:checked')].map((i) => i.value);
        continue;
      }
      const input = form.elements.namedItem(field.name);
      if (!input) continue;
      if (field.kind === "bool") body[field.name] = input.checked;
      else if (field.kind === "lines") body[field.name] = input.value.split("\n").map((l) => l.trim()).filter(Boolean);
      else if (field.kind === "number") body[field.name] = input.value === "" ? null : Number(input.value);
      else if (field.kind === "secret" && input.value === "") continue; // unchanged
      else if (field.kind === "select" && input.value === "") body[field.name] = null;
      else body[field.name] = input.value;
    }
    return body;
  },

  fill(form, fields, values) {
    for (const field of fields) {
      const value = values[field.name];
      if (field.kind === "multi") {
        for (const box of form.querySelectorAll('input[name="' + CSS.escape(field.name) + '"]')) box.checked = (value || []).includes(box.value);
        continue;
      }
      const input = form.elements.namedItem(field.name);
      if (!input) continue;
      if (field.kind === "bool") input.checked = Boolean(value);
      else if (field.kind === "secret") input.value = "";
      else if (field.kind === "lines") input.value = (value || []).join("\n");
      else input.value = value ?? "";
    }
  },

  // A refusal: on the field it names (a validation error's fields, or a
  // service's code naming its setting or field), else a toast.
  refuse(form, error) {
    const named = error.params && (error.params.field || error.params.setting);
    if (error.code && error.code !== "validation" && named && form.elements.namedItem(named)) error.fields = { [named]: error.message };
    KT.formErrors(form, error);
  },

  cellText(field, row) {
    const value = row[field.name];
    if (field.kind === "bool") return KT.t(value ? "records.yes" : "records.no");
    if (field.kind === "multi" || field.kind === "lines") return (value || []).join(", ");
    if (field.options.length) {
      const found = field.options.find(([v]) => v === value);
      return found ? KT.t(found[1]) : value ?? "";
    }
    return value ?? "";
  },

  // A file the user picks (null when they cancel).
  pickFile(accept) {
    return new Promise((resolve) => {
      const input = KT.el("input", { type: "file", accept, hidden: true });
      input.addEventListener("change", () => resolve(input.files[0] || null));
      input.addEventListener("cancel", () => resolve(null));
      document.body.append(input);
      input.click();
      setTimeout(() => input.remove(), 60000);
    });
  },

  showOnce(title, value) {
    const body = document.getElementById("record-dialog-body");
    document.getElementById("record-dialog-title").textContent = title;
    body.replaceChildren(KT.el("p", {}, KT.t("records.once")), KT.el("p", { class: "once" }, value));
    document.getElementById("record-dialog").showModal();
  },
};

KT.recordsSection = function (root, section) {
  const api = KT.pbxApi(section.api);
  const url = (row) => api + "/" + encodeURIComponent(row[section.key]);
  const inForm = section.fields.filter((f) => f.form);
  const editable = inForm.filter((f) => !f.fixed);
  // What names a record to people in titles and messages (a room, not a series id).
  const named = (row) => row[section.shown || section.key];
  let table = null;

  async function load() {
    table.set(await KT.api("GET", api));
  }

  async function act(row, action) {
    if (action.confirm && !window.confirm(KT.t(action.confirm, { name: named(row) }))) return;
    const target = url(row) + "/" + action.name;
    if (action.download) {
      KT.el("a", { href: target, download: "" }).click(); // the server names the file
      return;
    }
    let body;
    if (action.upload) {
      const file = await RECORDS.pickFile(action.upload);
      if (!file) return;
      body = new FormData();
      body.append("file", file);
    }
    try {
      const answer = await KT.api("POST", target, body);
      if (answer && answer.once) RECORDS.showOnce(KT.t(action.label) + " · " + named(row), answer.once);
      else KT.toast((answer && answer.message) || KT.t("records.done", { name: named(row) }));
      await load();
    } catch (exc) {
      KT.toast(exc.message, true);
    }
  }

  async function remove(row) {
    if (!window.confirm(KT.t("records.remove_confirm", { name: named(row) }))) return;
    try {
      await KT.api("DELETE", url(row));
      KT.toast(KT.t("records.removed", { name: named(row) }));
      await load();
    } catch (exc) {
      KT.toast(exc.message, true);
    }
  }

  function edit(row) {
    const form = RECORDS.form(section.name + "-edit", editable, KT.t("dialog.save"));
    RECORDS.fill(form, editable, row);
    // Only what the administrator changed is sent: a value the record
    // inherits (from its template) stays inherited unless it is edited.
    const before = RECORDS.read(form, editable);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const after = RECORDS.read(form, editable);
      const changed = Object.fromEntries(Object.entries(after).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(before[k])));
      try {
        await KT.api("PATCH", url(row), changed);
        document.getElementById("record-dialog").close();
        KT.toast(KT.t("records.saved", { name: named(row) }));
        await load();
      } catch (exc) {
        RECORDS.refuse(form, exc);
      }
    });
    document.getElementById("record-dialog-title").textContent = KT.t(section.title) + " · " + named(row);
    document.getElementById("record-dialog-body").replaceChildren(form);
    document.getElementById("record-dialog").showModal();
  }

  function buttons(row) {
    const list = [];
    if (section.edit) list.push(KT.el("button", { type: "button", "data-action": "edit", onclick: () => edit(row) }, KT.t("records.edit")));
    for (const action of section.actions)
      list.push(KT.el("button", { type: "button", "data-action": action.name, class: action.danger ? "danger" : null, onclick: () => act(row, action) }, KT.t(action.label)));
    if (section.remove) list.push(KT.el("button", { type: "button", class: "danger", "data-action": "remove", onclick: () => remove(row) }, KT.t("records.remove")));
    return list.flatMap((b, i) => (i ? [" ", b] : [b]));
  }

  const heading = KT.el("h2", { id: section.name + "-title" }, KT.t(section.title));
  const parts = [heading];
  if (section.intro) parts.push(KT.el("p", { class: "muted" }, KT.t(section.intro)));
  if (section.add) {
    const form = RECORDS.form(section.name + "-add", inForm, KT.t("records.add"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = RECORDS.read(form, inForm);
      try {
        const answer = await KT.api("POST", api, body);
        KT.formErrors(form, null);
        form.reset();
        if (section.prefill) RECORDS.fill(form, section.fields, await KT.api("GET", KT.pbxApi(section.prefill)));
        if (answer && answer.once) RECORDS.showOnce(KT.t(section.title) + " · " + named(answer), answer.once);
        else KT.toast(KT.t("records.added", { name: (answer && named(answer)) || named(body) }));
        await load();
      } catch (exc) {
        RECORDS.refuse(form, exc);
      }
    });
    parts.push(KT.el("details", { class: "add" }, KT.el("summary", {}, KT.t("records.add")), form));
    if (section.prefill) KT.api("GET", KT.pbxApi(section.prefill)).then((values) => RECORDS.fill(form, section.fields, values));
  }
  const filter = KT.el("input", { type: "search", autocomplete: "off", id: section.name + "-filter" });
  const csv = KT.el("a", { href: "#", class: "button" }, KT.t("records.csv"));
  const empty = KT.el("p", { class: "muted", hidden: true }, KT.t("records.empty"));
  const list = KT.el("table", { id: section.name, "aria-labelledby": heading.id });
  parts.push(KT.el("div", { class: "table-tools" }, KT.el("label", { for: filter.id }, KT.t("records.filter"), " ", filter), csv), list, empty);
  root.append(KT.el("section", { class: "card", "data-section": section.name }, parts));

  const columns = section.fields
    .filter((f) => f.listed)
    .map((f) => ({ key: f.name, label: KT.t(f.label), text: (row) => RECORDS.cellText(f, row) }));
  if (section.edit || section.remove || section.actions.length)
    columns.push({ key: "actions", label: "", sortable: false, csv: false, text: () => "", cell: buttons });
  table = KT.table(list, { columns, filter, csv, csvName: section.name + "-" + KT.pbx + ".csv", empty });
  return load();
};

KT.settingsSection = function (root, section) {
  const api = KT.pbxApi(section.api);
  const form = RECORDS.form(section.name, section.fields, KT.t("dialog.save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      RECORDS.fill(form, section.fields, await KT.api("PUT", api, RECORDS.read(form, section.fields)));
      KT.formErrors(form, null);
      KT.toast(KT.t("settings.saved"));
    } catch (exc) {
      RECORDS.refuse(form, exc);
    }
  });
  const parts = [KT.el("h2", {}, KT.t(section.title))];
  if (section.intro) parts.push(KT.el("p", { class: "muted" }, KT.t(section.intro)));
  root.append(KT.el("section", { class: "card", "data-section": section.name }, parts, form));
  return KT.api("GET", api).then((values) => RECORDS.fill(form, section.fields, values));
};

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("sections");
  for (const section of KT.sections) {
    const build = section.kind === "settings" ? KT.settingsSection : KT.recordsSection;
    build(root, section).catch((exc) => KT.toast(exc.message, true));
  }
});
