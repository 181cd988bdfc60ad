"""Every query on the audit tables (events, seals, signed and pruning checkpoints, links):
the only place they are read or written. Callers use ``from service.audit import store``."""

from __future__ import annotations

from service.audit.store.appends import (
    Along as Along,
)
from service.audit.store.appends import (
    RecordedEvent as RecordedEvent,
)
from service.audit.store.appends import (
    insert_events as insert_events,
)
from service.audit.store.chain import (
    CONTENT_COLUMNS as CONTENT_COLUMNS,
)
from service.audit.store.chain import (
    GENESIS as GENESIS,
)
from service.audit.store.chain import (
    GENESIS_HASH as GENESIS_HASH,
)
from service.audit.store.chain import (
    HORIZON as HORIZON,
)
from service.audit.store.chain import (
    ChainHead as ChainHead,
)
from service.audit.store.chain import (
    SealedRow as SealedRow,
)
from service.audit.store.chain import (
    add_signed_checkpoint as add_signed_checkpoint,
)
from service.audit.store.chain import (
    chain_head as chain_head,
)
from service.audit.store.chain import (
    chain_head_at as chain_head_at,
)
from service.audit.store.chain import (
    event_id_at as event_id_at,
)
from service.audit.store.chain import (
    insert_seals as insert_seals,
)
from service.audit.store.chain import (
    pending_count as pending_count,
)
from service.audit.store.chain import (
    pruning_start as pruning_start,
)
from service.audit.store.chain import (
    seal_with_hash as seal_with_hash,
)
from service.audit.store.chain import (
    sealable_events as sealable_events,
)
from service.audit.store.chain import (
    sealed_batch as sealed_batch,
)
from service.audit.store.chain import (
    serial_reads as serial_reads,
)
from service.audit.store.chain import (
    signed_checkpoint_for as signed_checkpoint_for,
)
from service.audit.store.chain import (
    signed_checkpoints as signed_checkpoints,
)
from service.audit.store.chain import (
    unsealed_counts as unsealed_counts,
)
from service.audit.store.events import (
    ReadEventRow as ReadEventRow,
)
from service.audit.store.events import (
    events_about as events_about,
)
from service.audit.store.events import (
    events_page as events_page,
)
from service.audit.store.events import (
    first_kept_position as first_kept_position,
)
from service.audit.store.events import (
    latest_action_times as latest_action_times,
)
from service.audit.store.events import (
    link_event as link_event,
)
from service.audit.store.events import (
    prune_batch as prune_batch,
)
from service.audit.store.events import (
    unlinked_node_events as unlinked_node_events,
)
