"""The phones' XML phonebooks, in the formats desk phones fetch over HTTP:
Yealink's remote phonebook, Snom's minibrowser directory and Grandstream's
phonebook. Made from the same entries as LDAP (those marked for the
phonebook), with ElementTree: every value is escaped by the serializer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kalliope_tel.directory.entries import Entry

FORMATS = ("yealink", "snom", "grandstream")


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = value
    return child


def _directory(root_tag: str, entries: list[Entry]) -> ET.Element:
    root = ET.Element(root_tag)
    for entry in entries:
        item = ET.SubElement(root, "DirectoryEntry")
        _text(item, "Name", entry.name)
        _text(item, "Telephone", entry.number)
    return root


def _grandstream(entries: list[Entry]) -> ET.Element:
    root = ET.Element("AddressBook")
    for entry in entries:
        contact = ET.SubElement(root, "Contact")
        first, _, last = entry.name.partition(" ")
        _text(contact, "FirstName", first)
        _text(contact, "LastName", last)
        phone = ET.SubElement(contact, "Phone")
        _text(phone, "phonenumber", entry.number)
        _text(phone, "accountindex", "1")
    return root


def render(kind: str, entries: list[Entry]) -> bytes:
    shown = sorted((e for e in entries if e.phonebook), key=lambda e: (e.name.lower(), e.number))
    if kind == "yealink":
        root = _directory("YealinkIPPhoneDirectory", shown)
    elif kind == "snom":
        root = _directory("SnomIPPhoneDirectory", shown)
    elif kind == "grandstream":
        root = _grandstream(shown)
    else:
        raise ValueError(f"unknown phonebook format {kind!r}")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
