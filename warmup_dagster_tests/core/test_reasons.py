"""The one vocabulary of failure reasons: attempts, refusals and failed jobs."""

from datetime import timedelta

import pytest

from warmup_dagster.core.admission import END_MARGIN
from warmup_dagster.core.delivery import Outcome
from warmup_dagster.core.reasons import REASONS, attempt_error, job_failure, refusal_error
from warmup_dagster_tests.core.test_admission import DAY, NOW, decide, job


@pytest.mark.parametrize(
    ("outcome", "code", "reason"),
    [
        (Outcome.SENT, 250, None),
        (Outcome.RETRY, 421, "smtp_4xx"),
        (Outcome.FAILED, 451, "smtp_4xx"),  # the last attempt of a temporary failure
        (Outcome.FAILED, 550, "smtp_5xx"),
        (Outcome.RETRY, None, "connection"),
        (Outcome.FAILED, None, "connection"),
        (Outcome.PAUSE, 535, "smtp_auth"),
        (Outcome.PAUSE, 530, "smtp_auth"),
        (Outcome.PAUSE, None, "mailbox_settings"),  # certificate, plaintext refused, no key
        (Outcome.FAILED, 354, "smtp_other"),
    ],
)
def test_each_attempt_outcome_has_its_reason(outcome, code, reason):
    assert attempt_error(outcome, code) == reason
    assert reason is None or reason in REASONS


def test_each_refusal_of_a_claim_has_its_reason():
    """The sentences `admit` refuses with, each mapped to a reason of its own."""
    yesterday = decide([job(1, local_date=DAY - timedelta(days=1))]).refused
    closing = decide([job(1)], now=NOW.replace(hour=22) - END_MARGIN + timedelta(seconds=1))
    quota = decide([job(1)], quotas={(1, DAY): 0}).refused
    plan = decide([job(1, user=3)], plans={3: 0}).refused
    reasons = [refusal_error(why) for [(_, why)] in (yesterday, closing.refused, quota, plan)]
    assert reasons == ["expired", "expired", "quota", "plan_limit"]
    assert refusal_error("something new") == "refused_other"
    assert set(reasons) | {"refused_other"} <= set(REASONS)


EXPIRED = "not sent: expired: its day (2026-03-02) is over"
QUOTA_USED = "not sent: the mailbox's quota of 3 for 2026-03-02 is used up"
PLAN_USED = "not sent: the owner's plan allows 3 sends on 2026-03-02, all used"


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (550, "recipient x refused: 550 no", "smtp_5xx"),
        (451, "recipient x refused: 451 later", "smtp_4xx"),  # its last attempt
        (None, EXPIRED, "expired"),
        # refused after an earlier attempt's 451: the refusal is why it failed
        (451, EXPIRED + "; its last attempt: recipient x refused: 451 later", "expired"),
        (None, QUOTA_USED, "quota"),
        (None, PLAN_USED, "plan_limit"),
        (None, "not sent: a reason added later", "refused_other"),
        (None, "timed out after 30.0 s talking to h:25", "connection"),
    ],
)
def test_a_failed_job_has_the_reason_its_attempt_or_refusal_was_counted_under(code, error, reason):
    assert job_failure(code, error) == reason
    assert reason in REASONS
