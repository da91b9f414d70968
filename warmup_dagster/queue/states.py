"""The job statuses the queue works with, each set defined once."""

from __future__ import annotations

from warmup_dagster.db.models import JobStatus

# A claim may take these when they are due.
CLAIMABLE = (JobStatus.PENDING, JobStatus.RETRY)
# Claimed, its attempt not yet ended: counted by every cap as if it were sent.
IN_FLIGHT = JobStatus.PROCESSING
# Not yet sent but holding a slot: count against caps, spacing and the plan's limit.
QUEUED = (*CLAIMABLE, IN_FLIGHT)
# Done: no claim takes them again.
FINISHED = (JobStatus.SENT, JobStatus.FAILED)
