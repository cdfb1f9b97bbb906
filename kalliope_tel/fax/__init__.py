"""Fax engine: spandsp through cffi, G.711 audio and T.38."""
