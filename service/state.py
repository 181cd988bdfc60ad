"""What the lifespan builds and every request shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.audit.signing import AuditSigner
from service.callers.store import AuthenticatedCaller
from service.config_cache import ConfigCache
from service.crypto.keyring import KeyRing
from service.grants.single_flight import SingleFlight
from service.ops.metrics import Metrics
from service.provisioning.claim_slots import ClaimSlots
from service.provisioning.notify import RequestNotifier
from service.provisioning.waits import LongPollLimits
from service.settings import Settings
from service.tailscale.client import TailscaleClient
from service.web.errors import EncryptionUnavailable
from service.web.refusals import RefusalGuard

# How long a claim waits for its turn, in upstream deadlines: each claim ahead takes at most
# one, and a waiter may arrive just after a round of slow claims (a refresh) began.
CLAIM_PATIENCE_DEADLINES = 2


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    key_ring: KeyRing | None
    tailscale: TailscaleClient
    notifier: RequestNotifier
    metrics: Metrics = field(default_factory=Metrics)
    # Signs the audit chain's checkpoints; production refuses to start without it.
    audit_signer: AuditSigner | None = None
    # One refresh per grant at a time in this process; see grants.refresh.access_token_for.
    refreshes: SingleFlight = field(default_factory=SingleFlight)
    # Throttles and folds refused anonymous requests, per process.
    refusals: RefusalGuard = field(default_factory=RefusalGuard)
    waits: LongPollLimits = field(default_factory=LongPollLimits)
    # Long-polls woken by one change to a request share one re-read of it.
    request_reads: SingleFlight = field(default_factory=SingleFlight)
    draining: bool = field(default=False)
    # Claims worked on at once: one per pooled connection (see provisioning.claim_slots).
    claim_slots: ClaimSlots = field(init=False)
    # Callers proven lately, by key hash, kept until the caller table changes.
    callers: ConfigCache[bytes, AuthenticatedCaller] = field(init=False)

    def __post_init__(self) -> None:
        self.claim_slots = ClaimSlots(
            self.settings.db_pool_size,
            CLAIM_PATIENCE_DEADLINES * self.settings.upstream_deadline_seconds,
        )
        self.callers = ConfigCache(lambda: self.notifier.config_generation)
        self.metrics.listener_up.set_function(lambda: float(self.notifier.listening))
        self.metrics.long_polls.set_function(lambda: float(self.waits.waiting))

    def require_key_ring(self) -> KeyRing:
        """The key ring, or a 503: without it no secret can be sealed or opened."""
        if self.key_ring is None:
            raise EncryptionUnavailable("No encryption key is loaded; secrets cannot be handled.")
        return self.key_ring
