// The password reset page: the token is in the link's fragment (#...), which
// browsers never send to a server; it goes in the body, once, and is taken
// out of the address bar at once.
"use strict";
// A second link opened in the same tab changes only the fragment: start over with it.
window.addEventListener("hashchange", () => window.location.reload());

document.addEventListener("DOMContentLoaded", () => {
  const token = window.location.hash.slice(1);
  history.replaceState(null, "", window.location.pathname);
  const form = document.getElementById("reset-form");
  const error = document.getElementById("reset-error");
  const say = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  if (!token) {
    form.hidden = true;
    say(KT.t("reset.no_token"));
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (form.password.value !== form.again.value) {
      say(KT.t("reset.mismatch"));
      form.again.focus();
      return;
    }
    try {
      const done = await KT.api("POST", "/api/v1/password-reset", { token, password: form.password.value }, { "X-CSRF-Token": KT.login_csrf });
      form.username.value = done.email; // password managers file the new password under the login
      form.hidden = true;
      document.getElementById("reset-done").hidden = false;
    } catch (exc) {
      say(exc.message);
      form.password.focus();
    }
  });
});
