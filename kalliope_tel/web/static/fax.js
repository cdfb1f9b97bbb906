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

const CANCELLABLE = new Set(["queued", "waiting", "dialling", "sending"]);

// When a queued fax goes (or goes again), in the PBX's time.
function scheduled(e) {
  return e.direction === "out" && (e.state === "queued" || e.state === "waiting") ? KT.localTime(e.next_attempt_at, true) : "";
}

// The attempts so far, each with its time and result; the last reason in view.
function attempts(e) {
  const log = e.attempt_log || [];
  if (e.direction === "in") return e.state === "received" ? "" : e.reason || "";
  if (!log.length) return e.reason || "";
  const last = log[log.length - 1];
  const summary = KT.t("fax.attempts_made", { count: log.length }) + (last.ok ? "" : " — " + (last.reason || e.reason || ""));
  return KT.el(
    "details",
    {},
    KT.el("summary", {}, summary),
    KT.el(
      "ol",
      {},
      log.map((a) =>
        KT.el("li", {}, KT.localTime(a.started_at, true) + " · " + (a.ok ? KT.t("fax.attempt_ok", { pages: a.pages }) : a.reason || KT.t("fax.attempt_running"))),
      ),
    ),
  );
}

function cancelButton(e) {
  return KT.el(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (!window.confirm(KT.t("fax.cancel_confirm", { number: e.number }))) return;
        try {
          await KT.api("POST", KT.pbxApi("/fax/jobs/" + e.id.replace("out-", "") + "/cancel"));
          KT.toast(KT.t("fax.cancelled"));
          await loadRegister();
        } catch (exc) {
          KT.toast(exc.message, true);
        }
      },
    },
    KT.t("fax.cancel"),
  );
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
        KT.el("td", { class: "state-" + e.state }, KT.state(e.state)),
        KT.el("td", {}, scheduled(e)),
        KT.el("td", {}, e.pages),
        KT.el("td", {}, attempts(e)),
        KT.el(
          "td",
          {},
          e.pages ? download(e, "document", KT.t("fax.document")) : null,
          e.report ? [" ", download(e, "report", KT.t("fax.report"))] : null,
          CANCELLABLE.has(e.state) ? [" ", cancelButton(e)] : null,
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
