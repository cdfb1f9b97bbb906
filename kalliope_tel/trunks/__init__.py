"""Carrier SIP trunks and the numbers (DIDs) they bring to PBXs."""
