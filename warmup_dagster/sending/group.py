"""One mailbox's group of claimed jobs as a sender run hands it to SMTP, and the outcomes it
gives without a session: the messages composed for the sender's local time, the deliveries of
a mailbox that can't sign in, and the note a reclaimed job's outcome carries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from warmup_dagster.core.content import compose
from warmup_dagster.core.delivery import Outcome
from warmup_dagster.core.names import display_name
from warmup_dagster.oauth.tokens import TokenUnavailable
from warmup_dagster.queue import ClaimedJob
from warmup_dagster.sending.messages import Delivery, Outgoing


def with_note(error: str | None, note: str | None) -> str | None:
    """An attempt's error with the note of why a reclaimed job was sent again, if any."""
    if note is None:
        return error
    return note if error is None else f"{error}; {note}"


def unable(exc: Exception, messages: list[Outgoing]) -> list[Delivery]:
    """The group's outcomes when its mailbox cannot sign in: a refused token (or a key that
    can't decrypt the password) pauses the mailbox as a refused password does; a provider
    that is down for now leaves the jobs to be retried with the usual backoff."""
    outcome = Outcome.RETRY if isinstance(exc, TokenUnavailable) else Outcome.PAUSE
    return [Delivery(m.job_id, outcome, None, "", str(exc)) for m in messages]


def compose_group(jobs: list[ClaimedJob], now: datetime) -> tuple[datetime, list[Outgoing]]:
    """One mailbox's messages at `now`, and their Date: `now` in the mailbox's local time.

    A job without stored words (every send until it is sent) is composed for the sender's
    local time now; the Date header gives the same local time, offset included, as the
    sender's own mail client would.
    """
    first = jobs[0]  # a group is one mailbox's: one timezone, one name
    local = now.astimezone(ZoneInfo(first.candidate.timezone))
    name = display_name(first.sender, first.sender_name)
    messages = []
    for job in jobs:
        subject, body = job.subject, job.body
        if subject is None or body is None:
            subject, body = compose(job.content_seed, job.sender, job.recipient, local, name)
        messages.append(
            Outgoing(
                job_id=job.candidate.job_id,
                sender=job.sender,
                recipient=job.recipient,
                message_id=job.message_id,
                subject=subject,
                body=body,
                in_reply_to=job.in_reply_to,
                references=job.references,
                sender_name=name,
            )
        )
    return local, messages
