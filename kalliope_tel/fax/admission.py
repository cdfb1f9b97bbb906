"""Whether this node's fax media engine takes one more call.

Checked before a call is answered (inbound: a refused caller hears
congestion and retries later) or placed (outbound: the job waits). Two
limits, either may be off (0):

- ``fax_max_calls``: calls in progress on the node, a count the
  administrator sets from the machine's measured capacity (``bench fax``).
- ``fax_max_media_load``: the share of one core the media clock's turns
  take, projected with one more call of the average cost. It guards a
  count set too high, or a machine slowed by its neighbours: past a core,
  turns run late, the far ends' modems hear holes and every call breaks at
  once (``bench fax`` found that cliff); refusing the next call keeps the
  ones in progress whole.

The projection counts every call taken, not only those already on the
clock, at the highest per-call cost the clock has measured: calls that
arrive together are decided before any of them ticks, the clock's load
(an average over a second) shows a call a second after it starts, and a
call costs about three times more once its pages flow, seconds later.
Weighing the load alone, ``bench fax`` admitted all 800 of 800 calls
offered in 5 s to a node that carries 400, and not one delivered.

A node that has not yet carried a page knows no page's cost: against a
burst on a cold node the count is the guard, which is why
``fax_max_calls`` is on by default and ``bench fax`` measures what to set.

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
            taken, per_call = max(calls, clock.active), max(clock.call_load, clock.peak_call_load)
            weighed = max(clock.load, per_call * taken)
            if weighed + per_call > self.max_load:
                return (
                    f"fax media engine busy ({weighed:.0%} of a core with {taken} calls;"
                    f" fax_max_media_load {self.max_load:.0%})"
                )
        return None
