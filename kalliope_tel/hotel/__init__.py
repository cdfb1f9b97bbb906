"""Kalliope Hotel: rooms, templates, check-in/out, cleaning, room-to-room blocking."""
