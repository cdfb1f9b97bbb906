// Shared by every page: the page's configuration, API calls with the
// session's CSRF token, messages in the page's language, and log out.
"use strict";
const KT = JSON.parse(document.getElementById("kt-config").textContent);

KT.t = function (key, vars) {
  let text = KT.messages[key] || key;
  for (const [name, value] of Object.entries(vars || {})) text = text.replace("{" + name + "}", value);
  return text;
};

// A state code (queued, scheduled...) in the page's language.
KT.state = (code) => KT.messages["state." + code] || code;

KT.api = async function (method, path, body, extraHeaders) {
  // X-Requested-With marks the pages' own calls: the log says "web" for them, "api" for scripts.
  const headers = Object.assign({ "X-CSRF-Token": KT.csrf || "", "X-Requested-With": "kt" }, extraHeaders || {});
  const options = { method, headers, credentials: "same-origin" };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401 && !path.endsWith("/session")) {
    window.location.assign("/login");
    throw new Error("not logged in");
  }
  const json = response.status !== 204 && (response.headers.get("content-type") || "").includes("json");
  const data = json ? await response.json() : null;
  if (!response.ok) {
    // The server answers in the page's language: the message (detail), its
    // code, and for a form that did not validate, a message per field.
    const error = new Error((data && data.detail) || KT.t("error.generic") + " (" + response.status + ")");
    error.code = data && data.code;
    error.params = (data && data.params) || {};
    error.fields = (data && data.fields) || {};
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
};

// Show a refusal on its form: each field's message next to the field (and
// announced), the rest as a toast. Clears the previous round's marks.
KT.formErrors = function (form, error) {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  let placed = 0;
  let fields = (error && error.fields) || {};
  // A service's refusal names its field (params.field or params.setting): shown under it too.
  const named = error && error.params && (error.params.field || error.params.setting);
  if (!Object.keys(fields).length && named) fields = { [named]: error.message };
  for (const [name, message] of Object.entries(fields)) {
    const input = form.querySelector('[name="' + CSS.escape(name) + '"]');
    if (!input) continue;
    const note = KT.el("span", { class: "field-error", id: "err-" + name, role: "alert" }, message);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    input.insertAdjacentElement("afterend", note);
    if (!placed++) input.focus();
  }
  if (!placed && error) KT.toast(error.message, true);
};

KT.pbxApi = (path) => "/api/v1/pbx/" + encodeURIComponent(KT.pbx) + path;

KT.toast = function (message, isError) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = isError ? "show error" : "show";
  clearTimeout(KT._toastTimer);
  KT._toastTimer = setTimeout(() => (box.className = ""), isError ? 6000 : 3000);
};

KT.localTime = function (iso, withDate) {
  if (!iso) return "";
  // The 24-hour clock in both languages: a hotel's alarms are read at a glance.
  const options = { timeZone: KT.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withDate) Object.assign(options, { day: "2-digit", month: "2-digit", year: "numeric" });
  return new Intl.DateTimeFormat(KT.lang, options).format(new Date(iso));
};

KT.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

// On the administration pages: whether the changes made have reached the
// phones yet (serve applies them within seconds), asked every few seconds.
KT.watchConfig = function (box) {
  const show = (state) => {
    box.dataset.state = state.state;
    if (state.state === "applied")
      box.textContent = "✓ " + KT.t("config.applied", { at: state.applied_at ? KT.localTime(state.applied_at) : "" });
    else if (state.state === "applying") box.textContent = "⟳ " + KT.t("config.applying");
    else box.textContent = "⚠ " + KT.t("config.failing", { error: state.error });
  };
  const ask = () =>
    KT.api("GET", KT.pbxApi("/config-state"))
      .then(show)
      .catch(() => {})
      .finally(() => setTimeout(ask, 3000));
  ask();
};

document.addEventListener("DOMContentLoaded", () => {
  const config = document.getElementById("config-state");
  if (config && KT.pbx) KT.watchConfig(config);
  // The view menu (the Console): another company of the caller's, or one of the partner's customers.
  const views = document.getElementById("view-switch");
  if (views)
    views.addEventListener("change", async () => {
      const [company, view] = views.value.split(":").map(Number);
      try {
        if (company !== KT.company) await KT.api("POST", "/api/v1/session/company", { company });
        if (view !== company) await KT.api("POST", "/api/v1/session/view", { company: view });
        else if (company === KT.company) await KT.api("POST", "/api/v1/session/view", { company: null });
      } catch (exc) {
        KT.toast(exc.message, true);
        return;
      }
      // The Manager stays the Manager in the new view; everything else opens the Console.
      window.location.assign(window.location.pathname === "/manager" ? "/manager" : "/console");
    });
  const logout = document.getElementById("logout");
  if (logout)
    logout.addEventListener("click", async () => {
      try {
        await KT.api("DELETE", "/api/v1/session");
      } finally {
        window.location.assign("/login");
      }
    });
});
