// A settings page: one form whose fields are named as the API's settings
// (data-api, under the PBX). Loads them, sends what the form holds (typed:
// check boxes as yes/no, numbers as numbers), and shows a refusal on the
// field it names, or as a toast.
"use strict";

KT.settingsForm = function (form) {
  const path = KT.pbxApi(form.dataset.api);
  const fields = [...form.elements].filter((e) => e.name);

  function fill(values) {
    for (const input of fields) {
      if (!(input.name in values)) continue;
      if (input.type === "checkbox") input.checked = Boolean(values[input.name]);
      else input.value = values[input.name] ?? "";
    }
  }

  function read() {
    const body = {};
    for (const input of fields) {
      if (input.type === "checkbox") body[input.name] = input.checked;
      else if (input.type === "number") body[input.name] = input.value === "" ? null : Number(input.value);
      else body[input.name] = input.value;
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      fill(await KT.api("PUT", path, read()));
      KT.formErrors(form, null);
      KT.toast(KT.t("settings.saved"));
    } catch (exc) {
      // A service's refusal names the setting it refuses (params.setting).
      if (exc.code && exc.code !== "validation" && exc.params && exc.params.setting)
        exc.fields = { [exc.params.setting]: exc.message };
      KT.formErrors(form, exc);
    }
  });
  return KT.api("GET", path).then(fill);
};

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("settings-form");
  if (form) KT.settingsForm(form).catch((exc) => KT.toast(exc.message, true));
});
