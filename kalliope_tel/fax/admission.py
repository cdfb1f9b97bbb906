"""Whether this node's fax media engine takes one more call.

Checked before a call is answered (inbound: a refused caller hears
congestion and retries later) or placed (outbound: the job waits). Two
limits, either may be off (0):

- ``fax_max_calls``: calls in progress on the node, a count the
  administrator sets from the machine's measured capacity (``bench fax``).
- ``fax_max_media_load``: the share of one core the media clock's turns
  have taken over the last second or so, projected with one more call of
  the average cost. It guards a count set too high, or a machine slowed by
  its neighbours: past a core, turns run late, the far ends' modems hear
  holes and every call breaks at once (``bench fax`` found that cliff);
  refusing the next call keeps the ones in progress whole.

The per-PBX and per-instance limits (``limits``) are counted in the
database across nodes; these are the node's own, and cost no query.
"""

from __future__ import annotations

from dataclasses import dataclass

from kalliope_tel.fax.media import MediaClock


@dataclass(frozen=True)
class MediaAdmission:
    max_calls: int = 0
    max_load: float = 0.0  # fraction of one core; 0: not checked

    def refusal(self, calls: int, clock: MediaClock) -> str | None:
        """Why one more call must be refused now, or None to take it.
        ``calls``: the node's fax calls in progress, media or not yet."""
        if self.max_calls and calls >= self.max_calls:
            return f"fax capacity reached (fax_max_calls {self.max_calls})"
        if self.max_load:
            active, load = clock.active, clock.load
            projected = load * (active + 1) / active if active else load
            if projected > self.max_load:
                return (
                    f"fax media engine busy ({load:.0%} of a core with {active} calls;"
                    f" fax_max_media_load {self.max_load:.0%})"
                )
        return None
