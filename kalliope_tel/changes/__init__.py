"""The change feed: which rooms changed, for the live panels of every node.

Theory of operation: a change to a room, its stay or its alarms writes a row
into ``live_change`` in the same transaction as the change itself, whatever
wrote it (the web, the CLI, a phone's service code, the wake-up scheduler,
another node). The row is the source of truth; a commit only rings a
doorbell: PostgreSQL ``NOTIFY`` (a trigger on the table, so every writer
rings it) or, on SQLite, an in-process wake-up plus a short poll for other
processes. Each node's feed reads the rows after the last one it saw and
hands the changed rooms to its subscribers. Rows carry no state, only which
room changed; readers load the room as it is when they read, so a late or
reordered row can never show an old state.
"""
