"""The job statuses the queue works with, each set defined once."""

from __future__ import annotations

from warmup_dagster.db.models import JobStatus

# A claim may take these when they are due.
CLAIMABLE = (JobStatus.PENDING, JobStatus.RETRY)
# Claimed, its attempt not yet ended: counted by every cap as if it were sent.
IN_FLIGHT = JobStatus.PROCESSING
# Not yet sent but holding a slot: count against caps, spacing and the plan's limit.
QUEUED = (*CLAIMABLE, IN_FLIGHT)
# Delivered: sent, and perhaps answered since (the receiving side marks a job it replied to
# REPLIED). Whatever counts or shows a job as sent takes both; its send-log row stays SENT.
DELIVERED = (JobStatus.SENT, JobStatus.REPLIED)
# Done: no claim takes them again.
FINISHED = (*DELIVERED, JobStatus.FAILED)
