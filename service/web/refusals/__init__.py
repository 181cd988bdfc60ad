"""Refused requests made cheap: throttled per source and key prefix, folded in the audit trail.

Each refusal takes a token from its source address's bucket and its key prefix's bucket;
once either is empty the answer is 429 with ``Retry-After``, given before routing and the
key lookup, so a flood costs no query. Requests with unproven keys still on their way count
as spent tokens, so a burst arriving at once sends no more than the burst to a lookup, and
the rest wait for those to settle (a good caller's burst then goes through). Those lookups,
and a source's first refusal write, share a lane two connections wide, leaving the pool to
callers. A key whose prefix has authenticated here skips all of it, so a good caller
behind a flood's address (a shared NAT) keeps working. In the trail, the first refusal from
a source in a minute is written at once, the rest of that minute as one event with a count.

The buckets and the folding live in this process: with several replicas each enforces its
own limits, so the service-wide rate is at most the configured one times the replicas.
"""

from __future__ import annotations

from service.web.refusals.buckets import UnprovenInFlight as UnprovenInFlight
from service.web.refusals.folding import FOLD_WINDOW_SECONDS as FOLD_WINDOW_SECONDS
from service.web.refusals.folding import Refusal as Refusal
from service.web.refusals.guard import THROTTLED_KEY as THROTTLED_KEY
from service.web.refusals.guard import RefusalGuard as RefusalGuard
from service.web.refusals.guard import bearer_key as bearer_key
