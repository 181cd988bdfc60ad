"""Checking the audit hash chain: the first event edited, removed, inserted or reordered.

The walk follows the seals' positions in batches at constant memory. Each seal must name
the hash of the one before it (or of the latest pruning checkpoint), hash to its own value,
still agree with its event's columns, and come after the one before it in chain order.
Signed checkpoints anchor the head: every signature must check, every checkpoint still
kept must lie on the chain, and ``expect`` (a checkpoint published elsewhere) catches a
shortened chain even when the checkpoints in the database were removed with it.
"""

from service.audit.chain.reports import VERIFY_BATCH as VERIFY_BATCH
from service.audit.chain.reports import ChainReport as ChainReport
from service.audit.chain.reports import Expectation as Expectation
from service.audit.chain.verify import verify_audit_chain as verify_audit_chain
from service.audit.chain.verify import verify_chain as verify_chain
from service.audit.chain.verify import verify_from as verify_from
