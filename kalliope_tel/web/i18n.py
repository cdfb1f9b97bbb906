"""Italian and English: the language is chosen from the browser
(Accept-Language) unless the user picked one (the ``kt_lang`` cookie).

One catalog for pages and scripts; a test checks both languages have the
same keys, so a label is never missing in one of them.
"""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "it")
LANG_COOKIE = "kt_lang"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "app": "kalliope-tel",
        "login.title": "Log in",
        "login.email": "E-mail address",
        "login.password": "Password",
        "login.submit": "Log in",
        "logout": "Log out",
        "language": "Language",
        "nav.panel": "Reception",
        "nav.fax": "Fax",
        "panel.title": "Receptionist panel",
        "panel.building": "Building",
        "panel.floor": "Floor",
        "panel.cleaning": "Cleaning",
        "panel.search": "Guest or notes",
        "panel.all": "All",
        "panel.clean": "Clean",
        "panel.dirty": "Dirty",
        "panel.free": "Free",
        "panel.occupied": "Occupied",
        "panel.alerts": "Unanswered alarms",
        "panel.no_alerts": "No unanswered alarms",
        "panel.ack": "Acknowledge",
        "panel.next_alarm": "Next alarm",
        "panel.cost": "Calls",
        "panel.live": "Live",
        "panel.offline": "Reconnecting…",
        "panel.mark_clean": "Mark clean",
        "panel.mark_dirty": "Mark dirty",
        "room.title": "Room",
        "room.checkin": "Check in",
        "room.checkout": "Check out",
        "room.checkout_confirm": "Check room {room} out? Its pending alarms are cancelled.",
        "room.owner": "Guest (owner)",
        "room.guests": "Other guests (one per line)",
        "room.notes": "Notes",
        "room.class": "Outbound calls",
        "room.class.restricted": "Restricted",
        "room.class.standard": "Standard",
        "room.alarms": "Alarms",
        "room.alarm_at": "New alarm at",
        "room.add_alarm": "Add alarm",
        "room.cancel_alarm": "Cancel",
        "room.timeline": "Timeline",
        "room.save": "Save",
        "room.close": "Close",
        "room.since": "since",
        "room.no_alarms": "No alarms",
        "fax.title": "Fax",
        "fax.register": "Register",
        "fax.send": "Send a fax",
        "fax.instance": "Fax line",
        "fax.number": "Number",
        "fax.documents": "Documents (PDF, DOC, DOCX, ODT)",
        "fax.at": "Send at (optional)",
        "fax.submit": "Send",
        "fax.queued": "Fax {id} queued: {pages} page(s)",
        "fax.when": "When",
        "fax.direction": "Direction",
        "fax.state": "Status",
        "fax.pages": "Pages",
        "fax.download": "Download",
        "fax.document": "Document",
        "fax.report": "Report",
        "fax.in": "Received",
        "fax.out": "Sent",
        "fax.empty": "No faxes yet",
        "error.generic": "Something went wrong",
    },
    "it": {
        "app": "kalliope-tel",
        "login.title": "Accesso",
        "login.email": "Indirizzo e-mail",
        "login.password": "Password",
        "login.submit": "Accedi",
        "logout": "Esci",
        "language": "Lingua",
        "nav.panel": "Reception",
        "nav.fax": "Fax",
        "panel.title": "Pannello receptionist",
        "panel.building": "Edificio",
        "panel.floor": "Piano",
        "panel.cleaning": "Pulizia",
        "panel.search": "Ospite o note",
        "panel.all": "Tutti",
        "panel.clean": "Pulita",
        "panel.dirty": "Sporca",
        "panel.free": "Libera",
        "panel.occupied": "Occupata",
        "panel.alerts": "Sveglie senza risposta",
        "panel.no_alerts": "Nessuna sveglia senza risposta",
        "panel.ack": "Presa visione",
        "panel.next_alarm": "Prossima sveglia",
        "panel.cost": "Chiamate",
        "panel.live": "In tempo reale",
        "panel.offline": "Riconnessione…",
        "panel.mark_clean": "Segna pulita",
        "panel.mark_dirty": "Segna sporca",
        "room.title": "Camera",
        "room.checkin": "Check-in",
        "room.checkout": "Check-out",
        "room.checkout_confirm": "Eseguire il check-out della camera {room}? Le sveglie in attesa vengono annullate.",
        "room.owner": "Ospite (intestatario)",
        "room.guests": "Altri ospiti (uno per riga)",
        "room.notes": "Note",
        "room.class": "Chiamate uscenti",
        "room.class.restricted": "Ristrette",
        "room.class.standard": "Standard",
        "room.alarms": "Sveglie",
        "room.alarm_at": "Nuova sveglia alle",
        "room.add_alarm": "Aggiungi sveglia",
        "room.cancel_alarm": "Annulla",
        "room.timeline": "Cronologia",
        "room.save": "Salva",
        "room.close": "Chiudi",
        "room.since": "dal",
        "room.no_alarms": "Nessuna sveglia",
        "fax.title": "Fax",
        "fax.register": "Registro",
        "fax.send": "Invia un fax",
        "fax.instance": "Linea fax",
        "fax.number": "Numero",
        "fax.documents": "Documenti (PDF, DOC, DOCX, ODT)",
        "fax.at": "Invia alle (facoltativo)",
        "fax.submit": "Invia",
        "fax.queued": "Fax {id} in coda: {pages} pagina/e",
        "fax.when": "Quando",
        "fax.direction": "Direzione",
        "fax.state": "Stato",
        "fax.pages": "Pagine",
        "fax.download": "Scarica",
        "fax.document": "Documento",
        "fax.report": "Rapporto",
        "fax.in": "Ricevuto",
        "fax.out": "Inviato",
        "fax.empty": "Ancora nessun fax",
        "error.generic": "Si è verificato un errore",
    },
}


def pick_language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    # "it-IT,it;q=0.9,en;q=0.8": the first language we have, by preference.
    ranked = []
    for i, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.split("-")[0].lower()))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return "en"
