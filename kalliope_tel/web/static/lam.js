// Meeting rooms: the calendar of a room the user manages, "Save and Send",
// cancelling, and one's own link to join.
"use strict";
const $ = (id) => document.getElementById(id);
const room = () => $("lam-room").value;
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const person = (who, moderator) => (who.includes("@") ? { email: who, moderator } : { user: who, moderator });

async function loadRooms() {
  const rooms = await KT.api("GET", KT.pbxApi("/lam/rooms"));
  $("no-rooms").hidden = rooms.length > 0;
  $("lam").hidden = rooms.length === 0;
  $("lam-room").replaceChildren(...rooms.map((r) => KT.el("option", { value: r.name }, r.name)));
  if (rooms.length) await loadMeetings();
}

async function loadMeetings() {
  const meetings = await KT.api("GET", KT.pbxApi("/lam/rooms/" + encodeURIComponent(room()) + "/meetings"));
  $("meetings").replaceChildren(
    ...meetings.map((m) =>
      KT.el(
        "li",
        { "data-meeting": m.id },
        KT.el("strong", {}, m.name),
        " · " + KT.localTime(m.starts_at, true) + " – " + KT.localTime(m.ends_at) + " · ",
        m.attendees.length + " ✉ · ",
        KT.t("lam.pins", { guest: m.guest_pin, moderator: m.moderator_pin }) + " ",
        KT.video
          ? KT.el(
              "button",
              {
                type: "button",
                class: "primary",
                onclick: async () => {
                  try {
                    const data = await KT.api("GET", KT.pbxApi("/lam/meetings/" + m.id + "/link"));
                    if (data.link) window.open(data.link, "_blank", "noopener");
                    else KT.toast(KT.t("lam.no_video"), true);
                  } catch (exc) {
                    KT.toast(exc.message, true);
                  }
                },
              },
              KT.t("lam.join"),
            )
          : null,
        " ",
        KT.el(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async () => {
              if (!window.confirm(KT.t("lam.cancel_confirm", { name: m.name }))) return;
              try {
                await KT.api("DELETE", KT.pbxApi("/lam/meetings/" + m.id));
                await loadMeetings();
              } catch (exc) {
                KT.toast(exc.message, true);
              }
            },
          },
          KT.t("lam.cancel"),
        ),
      ),
    ),
  );
  $("meetings-empty").hidden = meetings.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  $("lam-room").addEventListener("change", () => loadMeetings().catch((exc) => KT.toast(exc.message, true)));
  $("meeting-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = $("meeting-error");
    error.hidden = true;
    const body = {
      name: form.name.value,
      start: form.start.value,
      end: form.end.value,
      attendees: [
        ...lines(form.attendees.value).map((who) => person(who, false)),
        ...lines(form.moderators.value).map((who) => person(who, true)),
      ],
      password: form.password.value,
      waiting_room: form.waiting_room.checked,
    };
    try {
      const meeting = await KT.api("POST", KT.pbxApi("/lam/rooms/" + encodeURIComponent(room()) + "/meetings"), body);
      KT.toast(KT.t("lam.saved", { count: meeting.attendees.length }));
      form.reset();
      await loadMeetings();
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
    }
  });
  loadRooms().catch((exc) => KT.toast(exc.message, true));
});
