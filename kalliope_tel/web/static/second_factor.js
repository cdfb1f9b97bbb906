// The second factor after the password: either the code (or a recovery
// code), or, for an account that needs one and has none, the enrolment:
// QR code, first code, then the recovery codes shown once.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const enrolling = KT.stage === "enrol";
  const form = document.getElementById("code-form");
  const error = document.getElementById("code-error");
  const say = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  if (enrolling) {
    try {
      const enrolment = await KT.api("POST", "/api/v1/session/enrolment");
      document.getElementById("enrol-qr").src = enrolment.qr;
      document.getElementById("enrol-secret").textContent = enrolment.secret;
      document.getElementById("enrol").hidden = false;
    } catch (exc) {
      say(exc.message);
    }
  } else {
    document.getElementById("code-title").hidden = false;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const path = enrolling ? "/api/v1/session/enrolment/confirm" : "/api/v1/session/second-factor";
    try {
      const done = await KT.api("POST", path, { code: form.code.value });
      if (!enrolling) {
        window.location.assign("/");
        return;
      }
      form.hidden = true;
      document.getElementById("enrol").hidden = true;
      const list = document.getElementById("recovery-codes");
      for (const code of done.recovery_codes) {
        const item = document.createElement("li");
        item.textContent = code;
        list.appendChild(item);
      }
      document.getElementById("recovery").hidden = false;
      document.querySelector("#recovery a").focus();
    } catch (exc) {
      say(exc.message);
      form.code.select();
    }
  });
});
