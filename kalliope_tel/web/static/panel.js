// The receptionist panel: the rooms matrix (by building and floor), filters,
// the alerts column, the room dialog, and live updates over server-sent
// events (every change from any source arrives pushed, no polling).
"use strict";
const rooms = new Map(); // id -> room as the API shows it
let openRoom = null; // extension of the room in the dialog

const $ = (id) => document.getElementById(id);
const filters = () => ({
  building: $("f-building").value,
  floor: $("f-floor").value,
  clean: $("f-clean").value,
  text: $("f-text").value.trim().toLocaleLowerCase(),
});

function visible(room, f) {
  if (f.building && room.building !== f.building) return false;
  if (f.floor && room.floor !== f.floor) return false;
  if (f.clean && String(room.clean) !== f.clean) return false;
  if (f.text) {
    // Room number and name, guests and notes: what a receptionist types.
    const s = room.stay;
    const hay = [room.extension, room.name, ...(s ? [s.owner, ...s.guests, s.notes] : [])].join(" ").toLocaleLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

function fillSelect(select, values) {
  const keep = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => KT.el("option", { value: v }, v || "—")));
  select.value = values.includes(keep) ? keep : "";
}

function costText(cost) {
  if (!cost) return "";
  const parts = Object.entries(cost.total).map(([currency, amount]) => amount + " " + currency);
  return parts.join(" + ") || "0";
}

// A room's tile: number and state word, the dirty badge (free or occupied),
// the guest, the outbound class, the next alarm. Its button opens the room;
// the second one is the cleaning action (what it will do, not the state).
function roomCard(room) {
  const stay = room.stay;
  const toggle = KT.el(
    "button",
    {
      type: "button",
      class: "cleaning " + (room.clean ? "is-clean" : "is-dirty"),
      "data-action": "cleaning",
      "aria-label": room.extension + ": " + (room.clean ? KT.t("panel.mark_dirty") : KT.t("panel.mark_clean")),
      title: room.clean ? KT.t("panel.mark_dirty") : KT.t("panel.mark_clean"),
      onclick: async (event) => {
        event.stopPropagation();
        try {
          const updated = await KT.api("PUT", KT.pbxApi("/rooms/" + encodeURIComponent(room.extension) + "/cleaning"), {
            clean: !room.clean,
          });
          update([updated]);
        } catch (exc) {
          KT.toast(exc.message, true);
        }
      },
    },
    // A broom to clean a dirty room, a stain to mark a clean one dirty (the name says it in words).
    KT.el("img", { src: room.clean ? "/static/stain.svg" : "/static/broom.svg", alt: "", width: 16, height: 16 }),
  );
  // The name only when it says more than the number ("Room 101" does not).
  const name = room.name && !room.name.includes(room.extension) ? room.name : "";
  const state = room.occupied ? KT.t("panel.occupied") : KT.t("panel.free");
  const label = [room.extension, name, state, room.clean ? KT.t("panel.clean") : KT.t("panel.dirty"), stay ? stay.owner : ""]
    .filter(Boolean)
    .join(", ");
  return KT.el(
    "article",
    {
      class: "room " + (room.occupied ? "occupied" : "free") + (room.clean ? "" : " dirty"),
      "data-room": room.extension,
      "data-occupied": String(room.occupied),
      "data-clean": String(room.clean),
    },
    KT.el(
      "button",
      { type: "button", class: "room-open", "aria-label": label, onclick: () => openDialog(room.extension) },
      KT.el("span", { class: "number" }, room.extension),
      KT.el(
        "span",
        { class: "line" },
        KT.el("span", { class: "state" }, state),
      ),
      KT.el(
        "span",
        { class: "line who" + (stay ? " guests" : " name"), title: stay ? [stay.owner, ...stay.guests, stay.notes].filter(Boolean).join(" · ") : name },
        stay
          ? KT.el("span", { class: "badge class-" + stay.outbound, title: KT.t("room.class") + ": " + KT.t("room.class." + stay.outbound) }, KT.t("panel.class." + stay.outbound))
          : null,
        room.next_alarm
          ? KT.el("span", { class: "alarm" }, KT.el("img", { src: "/static/alarm.svg", alt: KT.t("panel.next_alarm"), width: 12, height: 12 }), KT.localTime(room.next_alarm, false) + " ")
          : null,
        stay ? [stay.owner, ...stay.guests].join(", ") : name,
      ),
    ),
    room.clean ? null : KT.el("span", { class: "band badge dirty" }, KT.t("panel.dirty")),
    toggle,
  );
}

function render() {
  const all = [...rooms.values()].sort((a, b) => a.extension.localeCompare(b.extension, undefined, { numeric: true }));
  fillSelect($("f-building"), [...new Set(all.map((r) => r.building))].sort());
  fillSelect($("f-floor"), [...new Set(all.map((r) => r.floor))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  const f = filters();
  const groups = new Map();
  for (const room of all) {
    if (!visible(room, f)) continue;
    const key = room.building + "\u0000" + room.floor;
    if (!groups.has(key)) groups.set(key, { building: room.building, floor: room.floor, rooms: [] });
    groups.get(key).rooms.push(room);
  }
  const order = (a, b) =>
    a.building.localeCompare(b.building) || a.floor.localeCompare(b.floor, undefined, { numeric: true });
  const sections = [...groups.values()].sort(order).map((g) =>
    KT.el(
      "section",
      { class: "floor", "data-building": g.building, "data-floor": g.floor },
      KT.el("h2", {}, (g.building || "—") + " · " + KT.t("panel.floor") + " " + (g.floor || "—")),
      KT.el("div", { class: "rooms" }, g.rooms.map(roomCard)),
    ),
  );
  // A live redraw must not take the keyboard's place away: the control that
  // had the focus (a tile's button or toggle) gets it back in the new tiles.
  const focused = document.activeElement;
  const tile = focused && $("matrix").contains(focused) ? focused.closest("[data-room]") : null;
  const control = tile && focused.classList.length ? "." + CSS.escape(focused.classList[0]) : null;
  $("matrix").replaceChildren(
    ...(sections.length ? sections : [KT.el("p", { class: "rack-empty muted", role: "status" }, KT.t("panel.no_match"))]),
  );
  if (tile && control) {
    const again = $("matrix").querySelector(`[data-room="${CSS.escape(tile.dataset.room)}"] ${control}`);
    if (again) again.focus({ preventScroll: true });
  }
  renderAlerts(all);
}

function renderAlerts(all) {
  const items = [];
  for (const room of all)
    for (const alert of room.alerts || [])
      items.push(
        KT.el(
          "li",
          { "data-alert": alert.id, "data-room": room.extension },
          KT.el("strong", {}, room.extension + " " + room.name),
          " ",
          KT.localTime(alert.due_at, true),
          " ",
          KT.el(
            "button",
            {
              type: "button",
              onclick: async () => {
                try {
                  await KT.api("POST", KT.pbxApi("/alerts/" + alert.id + "/ack"));
                } catch (exc) {
                  KT.toast(exc.message, true);
                }
              },
            },
            KT.t("panel.ack"),
          ),
        ),
      );
  $("alerts").replaceChildren(...items);
  $("no-alerts").hidden = items.length > 0;
}

function update(changed) {
  for (const room of changed) {
    if (room.removed) rooms.delete(room.id);
    else rooms.set(room.id, room);
  }
  render();
  if (openRoom && changed.some((r) => r.extension === openRoom)) fillDialog(openRoom);
}

async function loadAll() {
  const list = await KT.api("GET", KT.pbxApi("/rooms"));
  rooms.clear();
  update(list);
}

function connect() {
  const live = $("live");
  const source = new EventSource(KT.pbxApi("/events"));
  source.addEventListener("ready", () => {
    live.dataset.state = "live";
    live.textContent = KT.t("panel.live");
    loadAll().catch((exc) => KT.toast(exc.message, true)); // what changed while not connected
  });
  source.addEventListener("rooms", (event) => update(JSON.parse(event.data)));
  source.addEventListener("logout", () => {
    source.close();
    window.location.assign("/login");
  });
  source.addEventListener("resync", () => loadAll().catch((exc) => KT.toast(exc.message, true)));
  source.onerror = () => {
    live.dataset.state = "connecting";
    live.textContent = KT.t("panel.offline");
  };
}

// ------------------------------------------------------------ room dialog
const roomByExtension = (ext) => [...rooms.values()].find((r) => r.extension === ext);

async function fillDialog(extension) {
  const room = roomByExtension(extension);
  if (!room) return;
  $("room-title").textContent = KT.t("room.title") + " " + room.extension + " · " + room.name;
  const stay = room.stay;
  $("room-stay").replaceChildren(
    stay
      ? KT.el(
          "p",
          { class: "stay" },
          KT.el("strong", {}, [stay.owner, ...stay.guests].join(", ")),
          " · " + KT.t("room.since") + " " + KT.localTime(stay.checkin_at, true),
          room.cost ? " · " + KT.t("panel.cost") + ": " + costText(room.cost) : "",
        )
      : KT.el("p", { class: "muted" }, KT.t("panel.free")),
  );
  $("checkin-form").hidden = Boolean(stay);
  $("stay-form").hidden = !stay;
  $("alarms-section").hidden = !stay;
  // A live update must not overwrite what the receptionist is typing.
  const form = $("stay-form");
  if (stay && !form.contains(document.activeElement)) {
    form.owner.value = stay.owner;
    form.guests.value = stay.guests.join("\n");
    form.notes.value = stay.notes;
    form.outbound.value = stay.outbound;
  }
  if (stay) await fillAlarms(extension);
}

async function fillAlarms(extension) {
  const data = await KT.api("GET", KT.pbxApi("/rooms/" + encodeURIComponent(extension) + "/alarms"));
  const items = [...data.active, ...data.finished].map((a) =>
    KT.el(
      "li",
      { "data-alarm": a.id, "data-state": a.state },
      KT.localTime(a.due_at, true) + " · " + KT.state(a.state) + " (" + a.attempts_made + "/" + a.attempts + ") ",
      KT.el("button", { type: "button", class: "link", onclick: () => showTimeline(a.id) }, KT.t("room.timeline")),
      a.state === "scheduled"
        ? KT.el(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: async () => {
                try {
                  await KT.api("DELETE", KT.pbxApi("/alarms/" + a.id));
                  await fillAlarms(extension);
                } catch (exc) {
                  KT.toast(exc.message, true);
                }
              },
            },
            KT.t("room.cancel_alarm"),
          )
        : null,
    ),
  );
  $("room-alarms").replaceChildren(...(items.length ? items : [KT.el("li", { class: "muted" }, KT.t("room.no_alarms"))]));
}

let shownTimeline = null;

// Each attempt, then what happened in people's words (rang, answered,
// pressed 1, confirmed...); the channel events themselves only for an
// administrator who turns on the technical view.
async function showTimeline(alarmId) {
  const data = await KT.api("GET", KT.pbxApi("/alarms/" + alarmId + "/timeline"));
  shownTimeline = data;
  const technical = $("timeline-technical").checked;
  const rows = [];
  for (const attempt of data.attempts || []) {
    const outcome = attempt.outcome ? KT.t("timeline.outcome." + attempt.outcome) : KT.t("timeline.in_progress");
    rows.push(KT.el("li", { class: "attempt" }, KT.t("timeline.attempt", { n: attempt.number }) + " · " + outcome));
    for (const event of attempt.events || []) {
      const when = KT.localTime(event.at, false);
      if (technical) rows.push(KT.el("li", { class: "technical" }, when + " " + event.kind + " " + (event.detail || "")));
      else if (event.said) rows.push(KT.el("li", {}, when + " " + KT.t(event.said.code, event.said.params)));
    }
  }
  $("timeline").replaceChildren(...rows);
}

function openDialog(extension) {
  openRoom = extension;
  $("timeline").replaceChildren();
  fillDialog(extension);
  $("room-dialog").showModal();
}

async function act(work) {
  try {
    const updated = await work();
    if (updated && updated.id) update([updated]);
  } catch (exc) {
    KT.toast(exc.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // The channel events are the administrator's (troubleshooting), not the receptionist's.
  $("timeline-technical-box").hidden = !(KT.roles || []).includes("admin");
  $("timeline-technical").addEventListener("change", () => shownTimeline && showTimeline(shownTimeline.alarm));
  // "/" jumps to the search (as in most web apps); Escape there clears it.
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (event.key === "/" && !typing && !$("room-dialog").open) {
      event.preventDefault();
      $("f-text").focus();
    } else if (event.key === "Escape" && document.activeElement === $("f-text")) {
      $("f-text").value = "";
      render();
    }
  });
  for (const id of ["f-building", "f-floor", "f-clean"]) $(id).addEventListener("change", render);
  $("f-text").addEventListener("input", render);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("room-dialog").addEventListener("close", () => (openRoom = null));
  const path = () => KT.pbxApi("/rooms/" + encodeURIComponent(openRoom));
  $("checkin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const body = {
      owner: form.owner.value,
      guests: form.guests.value.split("\n").map((g) => g.trim()).filter(Boolean),
      notes: form.notes.value,
      outbound: form.outbound.value,
      alarms: form.alarm.value ? [form.alarm.value] : [],
    };
    act(async () => {
      const room = await KT.api("POST", path() + "/checkin", body);
      form.reset();
      return room;
    });
  });
  $("stay-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    act(async () => {
      try {
        const room = await KT.api("PATCH", path() + "/stay", {
          owner: form.owner.value,
          guests: form.guests.value.split("\n").map((g) => g.trim()).filter(Boolean),
          notes: form.notes.value,
          outbound: form.outbound.value,
        });
        KT.formErrors(form, null);
        KT.toast(KT.t("room.saved"));
        return room;
      } catch (exc) {
        KT.formErrors(form, exc);
        return null;
      }
    });
  });
  $("checkout").addEventListener("click", () => {
    if (!window.confirm(KT.t("room.checkout_confirm", { room: openRoom }))) return;
    act(() => KT.api("POST", path() + "/checkout"));
  });
  $("alarm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const extension = openRoom;
    act(async () => {
      await KT.api("POST", path() + "/alarms", { at: $("al-at").value });
      event.target.reset();
      await fillAlarms(extension);
    });
  });
  loadAll().catch((exc) => KT.toast(exc.message, true));
  connect();
});
