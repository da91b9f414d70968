"""The send queue: the one owner of `warmup_jobs`, `send_log` and `send_counters`.

Nothing outside this package writes those tables (migrations excepted). Planning enqueues
through `enqueue`, sender runs `claim` and `record`, and every count of sends goes through
`counting`. `docs/QUEUE.md` describes the tables and who writes what.

**What counts.** Every claim of a job ends in exactly one `send_log` row that is not late, or
is still in flight (the job PROCESSING, its `picked_at` the claim's time):

- `record` writes the row of each outcome the claim still holds;
- a claim that takes over a job whose lease ran out writes the row that closes the abandoned
  attempt (status RETRY: what became of it is unknown);
- an outcome that comes after its job was taken over is logged with `late` set: a duplicate
  send shows in the log, and it counts nowhere.

A *send that counts* is a `send_log` row with status SENT that is not late. The counters are
a ledger of reservations that agrees with the log, for every scope and period:

- global and user, minute and hour: the claims (log rows not late, plus jobs in flight) whose
  claim time falls in the period; every attempt counts against the rate caps, sent or not;
- user day: the sends that count of the user's jobs of that local date, plus its jobs of that
  date in flight;
- mailbox day: the same for the mailbox's SEND jobs (a reply does not use the quota).

Planning's plan-limit count of a local date is the sends that count plus the jobs still queued
(`counting.day_usage`): the user-day counter plus the jobs not yet claimed.
`audit.counter_mismatches` recomputes the counters of a span and reports every disagreement.
"""

from warmup_dagster.queue.caps import limits_from
from warmup_dagster.queue.claim import Claim, ClaimedJob, claim
from warmup_dagster.queue.counters import prune_counters
from warmup_dagster.queue.due import due_count, next_due
from warmup_dagster.queue.leases import extend_leases
from warmup_dagster.queue.outcomes import Recorded, Result, record

__all__ = [
    "Claim",
    "ClaimedJob",
    "Recorded",
    "Result",
    "claim",
    "due_count",
    "extend_leases",
    "limits_from",
    "next_due",
    "prune_counters",
    "record",
]
