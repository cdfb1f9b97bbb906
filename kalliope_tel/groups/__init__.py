"""Shared and numbering groups of PBXs (the seed's "PBX condiviso" and "PBX di gruppo")."""
