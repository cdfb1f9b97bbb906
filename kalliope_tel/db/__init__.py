"""Database layer: declarative base, engines, sessions, migrations."""
