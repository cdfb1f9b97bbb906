"""Italian and English: the language is chosen from the browser
(Accept-Language) unless the user picked one (the ``kt_lang`` cookie).

One catalogue (``kalliope_tel.catalogue``) for pages, scripts and the
refusals of the services; a test checks both languages have the same keys,
so a label is never missing in one of them.
"""

from __future__ import annotations

from fastapi import Request

from kalliope_tel import catalogue

LANGUAGES = catalogue.LANGUAGES
LANG_COOKIE = "kt_lang"

# The page labels live in the one catalogue with every other message.
MESSAGES: dict[str, dict[str, str]] = {lang: catalogue.messages(lang) for lang in LANGUAGES}


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
