// The stay history: filters sent to the API, the list sorted and filtered here, each stay's call report.
"use strict";
const $ = (id) => document.getElementById(id);
let table = null;

async function search() {
  const form = $("stays-filters");
  const query = new URLSearchParams();
  for (const name of ["room", "text"]) if (form[name].value.trim()) query.set(name, form[name].value.trim());
  if (form.since.value) query.set("since", form.since.value + " 00:00");
  if (form.until.value) query.set("until", form.until.value + " 23:59");
  if (form.current.checked) query.set("current", "true");
  table.set(await KT.api("GET", KT.pbxApi("/stays?" + query.toString())));
}

function report(stay, kind) {
  return KT.el("a", { href: KT.pbxApi("/stays/" + stay.id + "/report." + kind), download: "", "data-kind": kind }, kind.toUpperCase());
}

document.addEventListener("DOMContentLoaded", () => {
  table = KT.table($("stays"), {
    columns: [
      { key: "room", label: KT.t("stays.room") },
      { key: "owner", label: KT.t("room.owner") },
      { key: "guests", label: KT.t("stays.guests"), text: (s) => s.guests.join(", ") },
      { key: "checkin_at", label: KT.t("stays.checkin"), text: (s) => KT.localTime(s.checkin_at, true) },
      { key: "checkout_at", label: KT.t("stays.checkout"), text: (s) => (s.checkout_at ? KT.localTime(s.checkout_at, true) : KT.t("stays.in_room")) },
      { key: "outbound", label: KT.t("room.class"), text: (s) => KT.t("room.class." + s.outbound) },
      { key: "notes", label: KT.t("room.notes") },
      ...(KT.reports
        ? [{ key: "report", label: KT.t("stays.report"), sortable: false, csv: false, text: () => "", cell: (s) => [report(s, "xlsx"), " · ", report(s, "csv")] }]
        : []),
    ],
    filter: $("stays-filter"),
    csv: $("stays-csv"),
    csvName: "stays-" + KT.pbx + ".csv",
    empty: $("stays-empty"),
  });
  $("stays-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    search().catch((exc) => KT.toast(exc.message, true));
  });
  search().catch((exc) => KT.toast(exc.message, true));
});
