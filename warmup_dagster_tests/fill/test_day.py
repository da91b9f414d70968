"""A day's figures and checks from a day sent by the real Sender, on both databases; then the
same day broken in each way a check looks for."""

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from warmup_dagster import fill, queue
from warmup_dagster.core.admission import Scope
from warmup_dagster.db.models import JobKind, JobStatus, Mailbox, Plan, SendCounter
from warmup_dagster.fill.checks import evaluate
from warmup_dagster.fill.day import failure_reason
from warmup_dagster_tests.factories import add_job, log_send
from warmup_dagster_tests.fill.days import BOXES, DAY
from warmup_dagster_tests.sending.test_sender import KEY, jobs


def load(engine, sent_day, now=None):
    return fill.load(engine, sent_day.settings, DAY.date(), now or sent_day.clock.now())


def verdicts(engine, day):
    return {v.name: v for v in evaluate(day, fill.mismatches(engine, day))}


def test_the_figures_of_a_day_the_sender_sent(engine, sent_day):
    day = load(engine, sent_day)
    table = day.mailboxes
    assert table.loc[
        list(BOXES[:3]), ["quota", "sent", "failed", "held", "late"]
    ].values.tolist() == [
        [3, 2, 1, 0, 0],
        [2, 2, 0, 0, 0],
        [4, 0, 0, 0, 0],
    ]
    assert BOXES[3] not in table.index  # no plan, no send, no job that day
    assert table.loc[BOXES[0], "fill"] == pytest.approx(2 / 3)
    assert list(day.under_quota().index) == [BOXES[2], BOXES[0]]  # furthest under first
    assert day.failures == {"smtp_5xx": 1}
    figures = day.figures
    assert (figures["mailboxes"], figures["quota"], figures["planned"]) == (3, 9, 5)
    assert (figures["emails_sent"], figures["sent"], figures["replied"]) == (4, 4, 0)
    assert figures["mean_fill"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-4)
    assert (figures["mailboxes_under_quota"], figures["under_quota_by"]) == (2, 5)
    assert (figures["planned_shortfall"], figures["failed"], figures["rule_violations"]) == (
        4,
        1,
        0,
    )
    assert figures["peak_sends_per_hour"] == 4
    assert day.hourly.to_dict() == {DAY.replace(hour=9): 4}
    # every job was claimed the minute it came due on the fixed clock
    assert (figures["lateness_p50_min"], figures["lateness_p95_min"]) == (0.0, 0.0)
    assert day.closed


def test_the_checks_of_a_day_the_sender_sent(engine, sent_day):
    found = verdicts(engine, load(engine, sent_day))
    # the Sender kept every rule, and its counters agree with its log
    assert found["rules_held"].passed and found["rules_held"].metadata["violations"] == 0
    assert found["counters_agree"].passed and found["counters_agree"].metadata["checked"]
    assert found["no_stuck_jobs"].passed
    # two of three mailboxes under quota, the plan short by 4 of 9
    quota = found["quota_met"]
    assert not quota.passed and not quota.warn
    assert quota.metadata["below"] == f"{BOXES[2]}: 0 of 4\n{BOXES[0]}: 2 of 3"
    assert quota.description == (
        "2026-03-02: 1 of 3 mailboxes (33.3%) sent at least 100% of their quota; at least 95% must"
    )
    plan = found["plan_feasible"]
    assert not plan.passed and plan.metadata["mailboxes_short"] == f"{BOXES[2]}: 4 (no room)"


def test_thresholds_come_from_the_settings(engine, sent_day):
    lenient = sent_day.settings.model_copy(
        update={"fill_threshold": 0.6, "quota_met_share": 0.6, "plan_max_shortfall": 0.5}
    )
    day = fill.load(engine, lenient, DAY.date(), sent_day.clock.now())
    found = verdicts(engine, day)
    assert found["quota_met"].passed  # 2 of 3 sent at least 60%: 66.7%
    assert found["plan_feasible"].passed  # 4 of 9 left out: 44.4%


def test_a_day_still_open_only_warns_that_it_is_under_quota(engine, sent_day):
    day = load(engine, sent_day, now=DAY.replace(hour=12))
    assert not day.closed
    quota = verdicts(engine, day)["quota_met"]
    assert not quota.passed and quota.warn
    assert "so far (its windows are still open)" in quota.description


def test_a_day_that_broke_the_rules_fails_its_checks_naming_what_failed(engine, sent_day):
    ids = sent_day.ids
    nine = DAY.replace(hour=9)
    with Session(engine) as session, session.begin():
        box = session.get_one(Mailbox, ids[BOXES[1]])
        # a send 30 s after one of box1's, and one after its window closed
        for at in (nine + timedelta(seconds=30), DAY.replace(hour=22, minute=5)):
            job = add_job(session, box, box, at, JobStatus.SENT)
            log_send(session, job, at)
        # a job claimed at 20:00 and never finished: stuck (the lease is an hour in these tests)
        add_job(session, box, box, DAY.replace(hour=20), JobStatus.PROCESSING,
                picked_at=DAY.replace(hour=20))  # fmt: skip
    settings = sent_day.settings.model_copy(update={"stuck_after_leases": 2.5})
    day = fill.load(engine, settings, DAY.date(), sent_day.clock.now())
    found = verdicts(engine, day)

    rules = found["rules_held"]
    assert not rules.passed
    assert (rules.metadata["violations"], rules.metadata["mailbox spacing"]) == (2, 1)
    assert rules.metadata["send window"] == 1
    assert (
        rules.metadata["named"]
        .splitlines()[0]
        .startswith(
            f"mailbox spacing: mailbox {BOXES[1]} at 2026-03-02 09:00:30 UTC: 30 s after its send"
        )
    )
    stuck = found["no_stuck_jobs"]
    assert not stuck.passed and stuck.metadata["stuck"] == 1
    assert f"of {BOXES[1]}, claimed at 2026-03-02 20:00:00 UTC" in stuck.metadata["named"]
    assert day.figures["sent"] == 6


def test_counters_that_disagree_with_the_log_are_named(engine, sent_day):
    box0 = sent_day.ids[BOXES[0]]
    with engine.begin() as conn:
        conn.execute(
            update(SendCounter)
            .where(SendCounter.scope == Scope.MAILBOX_DAY, SendCounter.subject_id == box0)
            .values(used=SendCounter.used + 1)
        )
    counters = verdicts(engine, load(engine, sent_day))["counters_agree"]
    assert not counters.passed and counters.metadata["mismatches"] == 1
    assert counters.metadata["named"] == (
        f"MAILBOX_DAY of mailbox {box0} in local date 2026-03-02: the counter says 3,"
        " the send log and the jobs in flight say 2"
    )


def test_counters_pruned_already_are_not_checked(engine, sent_day):
    day = load(engine, sent_day, now=DAY + timedelta(days=3))
    counters = verdicts(engine, day)["counters_agree"]
    assert counters.passed and counters.metadata == {"checked": False}


def test_the_plan_limit_is_audited_per_owner(engine, sent_day):
    with engine.begin() as conn:  # the owners' plan now allows 3 a day; owner0 sent 4
        conn.execute(update(Plan).where(Plan.name == "pro").values(daily_send_limit=3))
    [violation] = load(engine, sent_day).violations
    assert (violation.rule, violation.subject) == ("plan daily limit", "owner owner0")
    assert violation.detail == "4 sends counted for the day; its limit is 3"


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (550.0, "recipient x refused: 550 no", "smtp_5xx"),  # a code as pandas holds it
        (float("nan"), "not sent: expired: its day (2026-03-02) is over", "expired"),
        (None, "timed out after 30.0 s talking to h:25", "connection"),
    ],
)
def test_failures_are_grouped_by_the_reasons_of_the_errors_metric(code, error, reason):
    assert failure_reason(code, error) == reason


def test_replies_held_jobs_and_late_outcomes_are_counted_per_mailbox(engine, sent_day):
    ten = DAY.replace(hour=10)
    with Session(engine) as session, session.begin():
        box = session.get_one(Mailbox, sent_day.ids[BOXES[1]])
        reply = add_job(session, box, box, ten, JobStatus.SENT, kind=JobKind.REPLY)
        log_send(session, reply, ten)
        # a duplicate: the outcome of an attempt whose lease had run out, logged late
        late = log_send(session, reply, ten + timedelta(minutes=20))
        late.late = True
        # a paused mailbox's job, put back and waiting for its resume
        add_job(session, box, box, ten, JobStatus.PENDING)
    day = load(engine, sent_day)
    row = day.mailboxes.loc[BOXES[1]]
    assert (row["sent"], row["replied"], row["held"], row["late"]) == (2, 1, 1, 1)
    assert row["fill"] == 1.0  # replies use no quota
    figures = day.figures
    assert (figures["emails_sent"], figures["replied"], figures["held"]) == (5, 1, 1)
    assert (figures["late_outcomes"], figures["sent_twice"]) == (1, 1)


def test_an_abandoned_attempt_shows_as_possibly_delivered(engine, sent_day):
    """A run that died holding a job: the claim that takes it over logs the attempt as
    possibly delivered, and the day's figures show it (per mailbox and for the day)."""
    box = sent_day.ids[BOXES[2]]
    settings = sent_day.settings
    ten = DAY.replace(hour=10)
    jobs(engine, [box], ["lost@x.example"], ten)
    assert len(queue.claim(engine, settings, lambda: ten, "dead", 10, KEY).jobs) == 1
    past_lease = ten + timedelta(seconds=settings.send_lease_seconds + 1)
    assert queue.claim(engine, settings, lambda: past_lease, "w2", 10, KEY).reclaimed == 1
    day = load(engine, sent_day)
    assert day.mailboxes.loc[BOXES[2], "possibly_delivered"] == 1
    assert day.mailboxes.loc[BOXES[0], "possibly_delivered"] == 0
    figures = day.figures
    assert figures["possibly_delivered"] == 1
    assert figures["late_outcomes"] == 0  # not a late outcome: nobody reported it


def test_lateness_is_measured_from_each_send_slot(engine, sent_day):
    ten = DAY.replace(hour=10)
    with Session(engine) as session, session.begin():
        box = session.get_one(Mailbox, sent_day.ids[BOXES[2]])
        for minutes in (1, 2, 3, 4, 30):
            job = add_job(session, box, box, ten, JobStatus.SENT, scheduled_at=ten)
            log_send(session, job, ten + timedelta(minutes=minutes))
    day = load(engine, sent_day)
    # the sender's four on time, then these five: [0, 0, 0, 0, 1, 2, 3, 4, 30] minutes
    assert day.lateness == [0.0] * 4 + [1.0, 2.0, 3.0, 4.0, 30.0]
    figures = day.figures
    assert (figures["lateness_p50_min"], figures["lateness_p95_min"]) == (1.0, 30.0)
