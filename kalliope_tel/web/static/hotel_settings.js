// The hotel settings page: the outbound classes to choose from come with the settings.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const data = await KT.api("GET", KT.pbxApi("/hotel/settings"));
  const select = document.getElementById("h-class");
  select.replaceChildren(select.options[0], ...data.classes.map((name) => KT.el("option", { value: name }, name)));
  select.value = data.non_room_class;
});
