"""The background job table: every job has an advisory lock of its own."""

from __future__ import annotations

from service.jobs import JOB_LOCK_BASE, JOBS


def test_no_two_jobs_share_an_advisory_lock() -> None:
    # Two jobs on one lock would skip each other on every replica, for good.
    locks = [JOB_LOCK_BASE + job.lock_id for job in JOBS.values()]
    assert len(set(locks)) == len(locks)
