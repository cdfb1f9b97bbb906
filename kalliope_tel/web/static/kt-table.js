// The administration pages' lists: a table sorted by any column (click its
// header; aria-sort says how), filtered by a text box, and downloaded as CSV
// with what is shown. Cells a spreadsheet would run as formulas are quoted.
"use strict";

KT.table = function (root, spec) {
  // spec: {columns: [{key, label, text?(row), cell?(row), order?(row)}], filter?: input, csv?: link, csvName?,
  // empty?, descending?}. order(row) sorts a column whose text does not (a local date: its ISO form).
  const state = { rows: [], sortKey: spec.columns[0].key, ascending: !spec.descending };
  const text = (column, row) => String(column.text ? column.text(row) : row[column.key] ?? "");
  const order = (column, row) => (column.order ? String(column.order(row)) : text(column, row));

  function visible() {
    const needle = spec.filter ? spec.filter.value.trim().toLocaleLowerCase() : "";
    const rows = state.rows.filter(
      (row) => !needle || spec.columns.some((c) => text(c, row).toLocaleLowerCase().includes(needle)),
    );
    const column = spec.columns.find((c) => c.key === state.sortKey);
    rows.sort((a, b) => order(column, a).localeCompare(order(column, b), KT.lang, { numeric: true }));
    if (!state.ascending) rows.reverse();
    return rows;
  }

  function render() {
    const rows = visible();
    const head = KT.el(
      "tr",
      {},
      spec.columns.map((c) =>
        KT.el(
          "th",
          { scope: "col", "aria-sort": c.key === state.sortKey ? (state.ascending ? "ascending" : "descending") : null },
          c.sortable === false
            ? c.label || KT.el("span", { class: "visually-hidden" }, KT.t("table.actions"))
            : KT.el(
                "button",
                {
                  type: "button",
                  class: "sort",
                  onclick: () => {
                    state.ascending = state.sortKey === c.key ? !state.ascending : true;
                    state.sortKey = c.key;
                    render();
                  },
                },
                c.label,
              ),
        ),
      ),
    );
    const body = rows.map((row) =>
      KT.el("tr", { "data-key": row[spec.columns[0].key] }, spec.columns.map((c) => KT.el("td", {}, c.cell ? c.cell(row) : text(c, row)))),
    );
    root.replaceChildren(KT.el("thead", {}, head), KT.el("tbody", {}, body));
    if (spec.empty) spec.empty.hidden = rows.length > 0;
    if (spec.csv) {
      const shown = spec.columns.filter((c) => c.csv !== false);
      const lines = [shown.map((c) => c.label), ...rows.map((row) => shown.map((c) => text(c, row)))];
      const csv = lines.map((cells) => cells.map(csvCell).join(",")).join("\r\n") + "\r\n";
      spec.csv.href = "data:text/csv;charset=utf-8," + encodeURIComponent("\ufeff" + csv);
      spec.csv.download = spec.csvName || "export.csv";
    }
  }

  function csvCell(value) {
    let v = String(value);
    if (/^[=+\-@\t\r]/.test(v)) v = "'" + v; // a formula in a spreadsheet otherwise
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }

  if (spec.filter) spec.filter.addEventListener("input", render);
  return {
    set(rows) {
      state.rows = rows;
      render();
    },
  };
};

// An all-or-nothing import of a table: a dry run first, the reader's
// confirmation (confirmText(dry run's answer)), then the import; every
// refused line listed in `list`. The import's answer, or null.
KT.importFile = async function (url, file, list, confirmText) {
  list.hidden = true;
  const send = (dryRun) => {
    const body = new FormData();
    body.append("file", file);
    return KT.api("POST", `${url}?dry_run=${dryRun}`, body);
  };
  try {
    const dry = await send(true);
    if (!window.confirm(confirmText(dry))) return null;
    return await send(false);
  } catch (exc) {
    KT.toast(exc.message, true);
    const errors = (exc.data && exc.data.errors) || [];
    list.replaceChildren(...errors.map((e) => KT.el("li", {}, KT.t("csv.line", { line: e.line, column: e.column, reason: e.detail }))));
    list.hidden = errors.length === 0;
    return null;
  }
};
