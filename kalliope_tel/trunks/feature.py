"""Carrier SIP trunks and numbers: the trunks' PJSIP objects and inbound
contexts (shared by the PBXs a trunk serves), each PBX's number and
outbound contexts, the registration state in 'doctor'."""

from __future__ import annotations

from kalliope_tel.features.base import Feature, lazy

FEATURE = Feature(
    name="trunks",
    summary="Carrier SIP trunks (registration, digest auth) and the numbers and blocks they bring to PBXs",
    dialplan=lazy("kalliope_tel.dialplan.trunks:dialplan_fragment"),
    shared_files=lazy("kalliope_tel.dialplan.trunks:shared_files"),
    shared_file_names=lazy("kalliope_tel.dialplan.trunks:shared_file_names"),
    doctor=lazy("kalliope_tel.trunks.registration:doctor_checks"),
)
