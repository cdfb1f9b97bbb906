"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      const me = await KT.api(
        "POST",
        "/api/v1/session",
        { email: form.email.value, password: form.password.value },
        { "X-CSRF-Token": KT.login_csrf },
      );
      window.location.assign(me.stage === "in" ? "/" : "/login/second-factor");
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
      form.password.focus();
    }
  });
});
