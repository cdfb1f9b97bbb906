"""Tenancy root: every domain row belongs to a PBX."""
