// Omnia Manager: the chosen PBX's numbers (add on a trunk, or on a new one
// made with "New SIP trunk"; search, status filter, sort, delete, CSV in and
// out), the company's SIP trunks with the registration state Asterisk
// reports now, and the partner's groups of PBXs (shared or numbering:
// create, put a PBX in one, a shared group's ring groups). The password of
// a trunk goes to the server and never comes back.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const M = "/api/v1/manager";
  let numTable = null, trunkTable = null, groupTable = null;
  let carriers = [], trunks = [], groups = [];

  const numUrl = () => `${M}/pbxs/${encodeURIComponent($("num-pbx").value)}/numbers`;
  const options = (select, rows, value, label, keep) => {
    const current = keep === undefined ? select.value : keep;
    select.replaceChildren(...rows.map((r) => KT.el("option", { value: value(r) }, label(r))));
    if (rows.some((r) => String(value(r)) === String(current))) select.value = current;
  };
  const registration = (state) => KT.t("trunks.state_" + state);

  // Reloads manager.js's PBX list and log, which then reloads this part ("kt-pbxs-loaded").
  const changed = () => document.dispatchEvent(new Event("kt-trunks-changed"));

  async function act(method, path, done, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return null;
    try {
      const answer = await KT.api(method, path);
      if (done) KT.toast(done);
      changed();
      return answer;
    } catch (exc) {
      KT.toast(exc.message, true);
      return null;
    }
  }

  function numActions(n) {
    if (!KT.admin) return "";
    const url = `${numUrl()}/${encodeURIComponent(n.number)}`;
    return KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", url, KT.t("numbers.deleted", n), KT.t("numbers.delete_confirm", n)) }, KT.t("console.delete"));
  }

  function trunkActions(tr) {
    if (!KT.admin) return "";
    const url = `${M}/trunks/${tr.id}`;
    return KT.el("button", { type: "button", class: "danger", onclick: () => act("DELETE", url, KT.t("trunks.deleted", tr), KT.t("trunks.delete_confirm", tr)) }, KT.t("console.delete"));
  }

  let pbxRows = [];
  async function loadNumbers() {
    if (!$("num-pbx").value) { numTable.set([]); return; }
    const pbx = pbxRows.find((p) => p.slug === $("num-pbx").value);
    if ($("d-destination") && pbx) $("d-destination").value = pbx.default_destination || "";
    const params = new URLSearchParams({ q: $("num-search").value.trim() });
    if ($("num-status").value) params.set("status", $("num-status").value);
    numTable.set(await KT.api("GET", `${numUrl()}?${params}`));
    $("num-csv").href = `${numUrl()}.csv`;
  }

  async function loadTrunks() {
    const params = new URLSearchParams({ q: $("trunk-search").value.trim(), carrier: $("trunk-carrier").value });
    trunks = await KT.api("GET", `${M}/trunks?${params}`);
    trunkTable.set(trunks);
    const pick = $("n-trunk");
    if (pick) {  // a trunk just made with "New SIP trunk" is the one chosen
      options(pick, trunks, (t) => t.id, (t) => `${t.description} (${t.carrier})`, pick.dataset.pick || undefined);
      delete pick.dataset.pick;
    }
  }

  function carrierEndpoints() {
    const carrier = carriers.find((c) => c.name === $("t-carrier").value);
    options($("t-endpoint"), carrier ? carrier.endpoints : [], (e) => e, (e) => e);
  }

  async function loadAll() {
    const [pbxs, found, groupRows] = await Promise.all([
      KT.api("GET", M + "/pbxs"), KT.api("GET", M + "/carriers"), KT.api("GET", M + "/groups"),
    ]);
    carriers = found;
    groups = groupRows;
    pbxRows = pbxs;
    for (const id of ["num-pbx", "j-pbx"]) if ($(id)) options($(id), pbxs, (p) => p.slug, (p) => `${p.name} (${p.slug})`);
    options($("trunk-carrier"), [{ name: "" }, ...carriers], (c) => c.name, (c) => c.name || KT.t("console.status_all"));
    if ($("t-carrier")) { options($("t-carrier"), carriers, (c) => c.name, (c) => c.name); carrierEndpoints(); }
    for (const id of ["j-group", "r-group"]) {
      if (!$(id)) continue;
      const rows = id === "j-group" ? [{ name: "" }, ...groups] : groups.filter((g) => g.kind === "shared");
      options($(id), rows, (g) => g.name, (g) => (g.name ? `${g.name} (${KT.t("groups.kind_" + g.kind)})` : KT.t("groups.none_single")));
    }
    groupTable.set(groups);
    if ($("num-form")) $("num-form").hidden = !pbxs.length;
    await Promise.all([loadTrunks(), loadNumbers()]);
  }

  function formJson(form) {
    const data = {};
    for (const input of form.querySelectorAll("input[name], select[name]")) {
      data[input.name] = input.type === "checkbox" ? input.checked : input.value.trim();
    }
    return data;
  }

  function submit(form, send) {
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      KT.formErrors(form, null);
      try {
        const message = await send(formJson(form));
        KT.toast(message);
        form.reset();
        changed();
      } catch (exc) {
        KT.formErrors(form, exc);
      }
    });
  }

  async function importNumbers(file) {
    const done = await KT.importFile(`${numUrl()}/import`, file, $("num-import-errors"), (dry) => KT.t("numbers.import_confirm", dry));
    if (!done) return;
    KT.toast(KT.t("numbers.imported", done));
    changed();
  }

  document.addEventListener("DOMContentLoaded", () => {
    numTable = KT.table($("num-table"), {
      empty: $("num-empty"),
      columns: [
        { key: "block", label: KT.t("numbers.number") },
        { key: "type", label: KT.t("numbers.type"), text: (n) => KT.t("numbers.type_" + n.type) },
        { key: "carrier", label: KT.t("trunks.carrier") },
        { key: "trunk", label: KT.t("trunks.trunk") },
        { key: "status", label: KT.t("console.status"), text: (n) => KT.t("manager.status_" + n.status) },
        { key: "actions", label: "", sortable: false, cell: numActions },
      ],
    });
    trunkTable = KT.table($("trunk-table"), {
      empty: $("trunk-empty"),
      columns: [
        { key: "description", label: KT.t("trunks.description") },
        { key: "carrier", label: KT.t("trunks.carrier") },
        { key: "endpoint", label: KT.t("trunks.endpoint") },
        { key: "username", label: KT.t("trunks.username"), text: (t) => t.username || "—" },
        { key: "registration", label: KT.t("trunks.registration"), text: (t) => registration(t.registration),
          cell: (t) => KT.el("span", { class: "state state-" + t.registration }, registration(t.registration)) },
        { key: "actions", label: "", sortable: false, cell: trunkActions },
      ],
    });
    groupTable = KT.table($("group-table"), {
      empty: $("group-empty"),
      columns: [
        { key: "name", label: KT.t("groups.name_label") },
        { key: "kind", label: KT.t("groups.kind_label"), text: (g) => KT.t("groups.kind_" + g.kind) },
        { key: "members", label: KT.t("groups.members"), text: (g) => g.members.join(", ") || "—" },
        { key: "ring_groups", label: KT.t("groups.ring_groups"), text: (g) => g.ring_groups.join(", ") || "—" },
      ],
    });
    $("num-pbx").addEventListener("change", loadNumbers);
    let typing = null;
    $("num-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(loadNumbers, 250); });
    $("num-status").addEventListener("change", loadNumbers);
    $("trunk-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(loadTrunks, 250); });
    $("trunk-carrier").addEventListener("change", loadTrunks);
    if ($("t-carrier")) $("t-carrier").addEventListener("change", carrierEndpoints);
    if ($("n-new-trunk")) $("n-new-trunk").addEventListener("click", () => { $("trunks").scrollIntoView(); $("t-description").focus(); });
    submit($("dest-form"), async (d) => {
      const slug = $("num-pbx").value;
      await KT.api("PATCH", `${M}/pbxs/${encodeURIComponent(slug)}`, { default_destination: d.default_destination });
      return KT.t("numbers.default_destination_saved", { pbx: slug });
    });
    submit($("num-form"), async (d) => {
      const made = await KT.api("POST", numUrl(), { number: d.number, type: Number(d.type), trunk: Number(d.trunk) || null });
      return KT.t("numbers.added", made);
    });
    submit($("trunk-form"), async (d) => {
      const made = await KT.api("POST", M + "/trunks", d);
      if ($("n-trunk")) $("n-trunk").dataset.pick = made.id;
      return KT.t("trunks.added", made);
    });
    submit($("group-form"), async (d) => KT.t("groups.added", await KT.api("POST", M + "/groups", d)));
    submit($("join-form"), async (d) => {
      const done = await KT.api("POST", `${M}/pbxs/${encodeURIComponent(d.pbx)}/group`, { group: d.group || null });
      return KT.t(done.group ? "groups.joined" : "groups.left", done);
    });
    submit($("ring-form"), async (d) => {
      const members = d.members.split(/[\s,;]+/).filter(Boolean);
      await KT.api("PUT", `${M}/groups/${encodeURIComponent(d.group)}/ring-groups`, { number: d.number, name: d.name, members });
      return KT.t("groups.ring_saved", d);
    });
    if ($("num-import")) $("num-import").addEventListener("change", (event) => {
      if (event.target.files[0]) importNumbers(event.target.files[0]);
      event.target.value = "";
    });
    document.addEventListener("kt-pbxs-loaded", () => loadAll().catch((exc) => KT.toast(exc.message, true)));
  });
})();
