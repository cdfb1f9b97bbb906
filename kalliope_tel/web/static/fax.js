// The fax pages: send a fax (documents uploaded with the form) and the register.
"use strict";
const $ = (id) => document.getElementById(id);

async function loadInstances() {
  const list = await KT.api("GET", KT.pbxApi("/fax/instances"));
  $("fx-instance").replaceChildren(
    ...list.filter((i) => i.may_send).map((i) => KT.el("option", { value: i.name }, i.name)),
  );
}

function download(entry, kind, label) {
  const href = KT.pbxApi("/fax/register/" + encodeURIComponent(entry.id) + "/files/" + kind);
  return KT.el("a", { href, download: "", "data-kind": kind }, label);
}

async function loadRegister() {
  const rows = await KT.api("GET", KT.pbxApi("/fax/register"));
  const body = $("register").querySelector("tbody");
  body.replaceChildren(
    ...rows.map((e) =>
      KT.el(
        "tr",
        { "data-fax": e.id, "data-state": e.state },
        KT.el("td", {}, KT.localTime(e.when, true)),
        KT.el("td", {}, e.direction === "in" ? KT.t("fax.in") : KT.t("fax.out")),
        KT.el("td", {}, e.instance),
        KT.el("td", {}, e.number || ""),
        KT.el("td", {}, KT.state(e.state) + (e.reason && e.state !== "received" && e.state !== "sent" ? " — " + e.reason : "")),
        KT.el("td", {}, e.pages),
        KT.el(
          "td",
          {},
          e.pages ? download(e, "document", KT.t("fax.document")) : null,
          e.report ? [" ", download(e, "report", KT.t("fax.report"))] : null,
        ),
      ),
    ),
  );
  $("register-empty").hidden = rows.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  loadInstances().catch((exc) => KT.toast(exc.message, true));
  loadRegister().catch((exc) => KT.toast(exc.message, true));
  setInterval(() => loadRegister().catch(() => {}), 10000);
  $("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = $("send-error");
    error.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await KT.api("POST", KT.pbxApi("/fax/send"), new FormData(form));
      KT.toast(KT.t("fax.queued", { id: job.id, pages: job.pages }));
      form.reset();
      await loadRegister();
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
});
