"""Issue 3, item 8: French is the default language, and its catalogues are complete. An
empty msgstr reaches a French reader in English; a fuzzy one is not compiled at all (and
was guessed by msgmerge from another string)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

LOCALE = Path(settings.LOCALE_PATHS[0])
DOMAINS = ("django", "djangojs")
FIELD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$')


def entries(path: Path) -> list[dict]:
    """The live entries of a .po file, header included, as {field: text, "flags": set}.

    A few lines rather than gettext's msgattrib --untranslated, which counts a plural with
    one empty form as translated."""
    found: list[dict] = []
    entry: dict = {}
    key = None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                found.append(entry)
            entry, key = {}, None
        elif line.startswith("#,"):
            entry["flags"] = {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue  # comments, previous msgids (#|) and obsolete entries (#~)
        elif match := FIELD.match(line):
            key = match[1]
            entry[key] = ast.literal_eval(match[2])
        elif line.startswith('"') and key:
            entry[key] += ast.literal_eval(line)
        else:
            raise AssertionError(f"{path}: a line this reader does not know: {line!r}")
    return found


def untranslated(entry: dict) -> bool:
    if "msgid_plural" in entry:
        # French has two forms (Plural-Forms: nplurals=2): both must be there and filled.
        return not (entry.get("msgstr[0]") and entry.get("msgstr[1]"))
    return not entry.get("msgstr")


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_french_catalogue_has_no_empty_or_fuzzy_entry(domain):
    path = LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.po"
    found = entries(path)
    assert len(found) > 100, f"{path}: only {len(found)} entries read"
    fuzzy = [entry["msgid"] or "(the header)" for entry in found if "fuzzy" in entry.get("flags", ())]
    empty = [entry["msgid"] for entry in found if entry["msgid"] and untranslated(entry)]
    assert not fuzzy and not empty, (
        f"{path}: translate these, then `make messages` (fuzzy: {fuzzy}; empty: {empty})"
    )


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_each_catalogue_compiles_with_its_placeholders_intact(language, domain):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.fail("msgfmt is missing: install gettext (`make messages` does)")
    path = LOCALE / language / "LC_MESSAGES" / f"{domain}.po"
    # --check: the header, and every %(name)s / %d of a msgid kept in its msgstr.
    done = subprocess.run([msgfmt, "--check", "-o", os.devnull, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.django_db
def test_an_api_error_is_in_french_when_the_client_asks_no_language():
    response = Client().get("/api/v1/mediations", {"q": "\x00"})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "bad_request", "message": "Un paramètre contient un caractère NUL."}
    english = Client().get("/api/v1/mediations", {"q": "\x00"}, HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["error"]["message"] == "A parameter holds a NUL character."


def test_the_browser_catalogue_is_french_when_the_client_asks_no_language():
    french = Client().get("/jsi18n/")
    assert french.status_code == 200
    assert json.dumps("Envoyer mon inscription") in french.content.decode()
    assert json.dumps("Clore la m\u00e9diation sans accord") in french.content.decode()
    english = Client().get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Envoyer mon inscription" not in english.content.decode()
