"""Why mail did not go: the one vocabulary of failure reasons, as pure functions.

Every reason is from a closed set (`REASONS`), so whatever reads them stays bounded: the
`warmup_errors_total` metric labels its series with them (`queue.totals` counts each attempt
that did not send, each abandoned claim, each late outcome and each refused job), and the
fill rate groups a day's failed jobs by them (`fill.day`). A reason is the kind of trouble an
operator acts on, never the error's text (which stays on the job and in the send log).
"""

from __future__ import annotations

from warmup_dagster.core.delivery import AUTH_CODES, Outcome

SMTP_4XX = "smtp_4xx"  # a temporary refusal (retried; the last attempt fails)
SMTP_5XX = "smtp_5xx"  # a permanent refusal (failed)
SMTP_OTHER = "smtp_other"  # a reply code that is neither 2xx, 4xx nor 5xx
SMTP_AUTH = "smtp_auth"  # the login was refused: the mailbox is paused
CONNECTION = "connection"  # no reply: refused or dropped connection, timeout
MAILBOX_SETTINGS = "mailbox_settings"  # unusable settings or certificate: the mailbox is paused
ABANDONED = "abandoned"  # a claim's lease ran out: its run died or lost the database
LATE = "late"  # an outcome that came after its job had been taken over (counted nowhere)
EXPIRED = "expired"  # refused at claim time: the job's day (or its window) is over
QUOTA = "quota"  # refused: the mailbox's quota for the day is used up
PLAN_LIMIT = "plan_limit"  # refused: the owner's plan's daily limit is used up
REFUSED_OTHER = "refused_other"  # refused for a reason this module does not know yet
REASONS = (
    SMTP_4XX, SMTP_5XX, SMTP_OTHER, SMTP_AUTH, CONNECTION, MAILBOX_SETTINGS, ABANDONED, LATE,
    EXPIRED, QUOTA, PLAN_LIMIT, REFUSED_OTHER,
)  # fmt: skip

# What a claim writes on a job it refuses, before the sentence of `core.admission.admit`.
REFUSED_PREFIX = "not sent: "
# What a claim writes in the send log when it takes over a job whose lease ran out: the dead
# run may have handed the message to its server before it could write so, so the earlier
# attempt's outcome is unknown and a send again may be a second copy (`queue.counting`).
POSSIBLY_DELIVERED = "abandoned: outcome unknown, possibly delivered"


def smtp_error(code: int) -> str:
    """The reason of an SMTP reply `code` that did not send."""
    if 400 <= code < 500:
        return SMTP_4XX
    if 500 <= code < 600:
        return SMTP_5XX
    return SMTP_OTHER


def attempt_error(outcome: Outcome, code: int | None) -> str | None:
    """The reason an attempt's outcome counts as an error, or None for a send."""
    if outcome is Outcome.SENT:
        return None
    if outcome is Outcome.PAUSE:
        return SMTP_AUTH if code in AUTH_CODES else MAILBOX_SETTINGS
    return CONNECTION if code is None else smtp_error(code)


def refusal_error(why: str) -> str:
    """The reason of a claim's refusal, from the sentence `core.admission.admit` gives."""
    if why.startswith("expired"):
        return EXPIRED
    if why.startswith("the mailbox's quota"):
        return QUOTA
    if why.startswith("the owner's plan"):
        return PLAN_LIMIT
    return REFUSED_OTHER


def job_failure(code: int | None, error: str | None) -> str:
    """The reason a FAILED job failed, from its stored SMTP code and error.

    A claim's refusal first (its error begins `not sent: `; the code, if any, is an earlier
    attempt's), then the code of its last attempt; a last attempt without a reply is a
    connection failure, as `attempt_error` counts it.
    """
    if error and error.startswith(REFUSED_PREFIX):
        return refusal_error(error.removeprefix(REFUSED_PREFIX))
    return CONNECTION if code is None else smtp_error(code)
