"""Pruning the history past retention, on both databases: exactly the old finished rows go;
what is owed, in flight or recent stays, and the counters still agree with the log."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import DailyQuota, JobStatus, SendLog, WarmupJob
from warmup_dagster.queue.audit import counter_mismatches
from warmup_dagster.queue.retention import cutoff, old_dates, prune
from warmup_dagster.queue.states import FINISHED
from warmup_dagster.settings import SettingsError, load_settings
from warmup_dagster_tests.retention.history import NOW, OLD, RECENT, STALE_COUNTER, snapshot

RECENT_SPAN = (NOW.replace(hour=0), NOW)


def expected_after(engine, before: dict[str, set], held: list[int]) -> dict[str, set]:
    """`before` without the old day's finished jobs, their log rows, its orphaned log row,
    the quotas of its mailboxes without a held job, and the stale counter."""
    with Session(engine) as session:
        finished = set(
            session.scalars(
                select(WarmupJob.id).where(
                    WarmupJob.local_date == OLD, WarmupJob.status.in_(FINISHED)
                )
            )
        )
        their_log = set(
            session.scalars(
                select(SendLog.id).where(
                    SendLog.job_id.in_(finished)
                    | (SendLog.job_id.is_(None) & (SendLog.local_date == OLD))
                )
            )
        )
        keeping = set(session.scalars(select(WarmupJob.mailbox_id).where(WarmupJob.id.in_(held))))
    quotas = {(m, d) for m, d in before["quotas"] if d != OLD or m in keeping}
    return {
        "jobs": before["jobs"] - finished,
        "log": before["log"] - their_log,
        "quotas": quotas,
        "counters": before["counters"] - {STALE_COUNTER},
    }


def test_the_cutoff_is_retention_days_before_the_clocks_date():
    assert cutoff(NOW, 35) == RECENT - timedelta(days=35)
    assert cutoff(NOW, 0) is None


def test_old_dates_are_found_in_each_table(history, engine):
    assert old_dates(engine, RECENT) == [OLD]
    assert old_dates(engine, RECENT + timedelta(days=1)) == [OLD, RECENT]
    assert old_dates(engine, OLD) == []


def test_a_prune_deletes_exactly_the_old_finished_rows(history, engine):
    before = snapshot(engine)
    assert counter_mismatches(engine, *RECENT_SPAN) == []
    expected = expected_after(engine, before, history.held)
    assert len(before["jobs"] - expected["jobs"]) == 5  # four SENT, one FAILED
    assert len(before["log"] - expected["log"]) == 6  # their attempts and the orphan

    pruned = prune(engine, NOW, history.settings)

    assert snapshot(engine) == expected
    [day] = pruned.days
    assert (day.day, day.jobs, day.log_rows, day.quotas, day.held) == (OLD, 5, 6, 2, 2)
    assert pruned.counters == 1
    assert pruned.cutoff == RECENT - timedelta(days=35)
    with Session(engine) as session:
        held = {
            j.id: j.status
            for j in session.scalars(select(WarmupJob).where(WarmupJob.local_date == OLD))
        }
        held_log = session.scalars(select(SendLog.job_id).where(SendLog.local_date == OLD)).all()
    assert held == {history.held[0]: JobStatus.PENDING, history.held[1]: JobStatus.PROCESSING}
    assert sorted(held_log) == sorted(history.held)
    # the recent day's counters still agree with its log
    assert counter_mismatches(engine, *RECENT_SPAN) == []
    # a second prune finds nothing more
    again = prune(engine, NOW, history.settings)
    assert (again.jobs, again.log_rows, again.quotas, again.counters) == (0, 0, 0, 0)
    assert snapshot(engine) == expected


def test_a_dry_run_counts_what_a_prune_deletes_and_deletes_nothing(history, engine):
    before = snapshot(engine)
    counted = prune(engine, NOW, history.settings, dry_run=True)
    assert snapshot(engine) == before
    pruned = prune(engine, NOW, history.settings)
    assert [vars(d) for d in counted.days] == [vars(d) for d in pruned.days]
    assert counted.counters == pruned.counters
    assert counted.lines()[-1] == (
        "would delete 5 jobs, 6 send-log rows, 2 daily quotas and 1 counters"
    )


def test_batches_of_one_job_delete_the_same_rows(history, engine):
    before = snapshot(engine)
    expected = expected_after(engine, before, history.held)
    pruned = prune(engine, NOW, history.settings.model_copy(update={"retention_batch_rows": 1}))
    assert snapshot(engine) == expected
    # five job batches, one orphan batch, two quota batches, one counter batch
    assert pruned.batches == 9


def test_a_date_not_released_is_kept_and_named(history, engine):
    before = snapshot(engine)
    pruned = prune(engine, NOW, history.settings, release=lambda dates: set())
    assert pruned.days == [] and pruned.unreleased == [OLD]
    assert snapshot(engine) == {**before, "counters": before["counters"] - {STALE_COUNTER}}
    assert "kept 1 dates without a fill_rate record: 2026-03-02" in "\n".join(pruned.lines())


def test_recent_dates_and_retention_off_keep_everything(history, engine):
    before = snapshot(engine)
    longer = history.settings.model_copy(update={"retention_days": 60})
    assert prune(engine, NOW, longer).days == []
    off = prune(engine, NOW, history.settings.model_copy(update={"retention_days": 0}))
    assert off.cutoff is None and off.days == []
    assert off.lines()[0].startswith("retention is off")
    assert snapshot(engine) == {**before, "counters": before["counters"] - {STALE_COUNTER}}


def test_the_quotas_of_a_day_with_held_jobs_stay_for_those_mailboxes(history, engine):
    prune(engine, NOW, history.settings)
    with Session(engine) as session:
        kept = set(
            session.scalars(select(DailyQuota.mailbox_id).where(DailyQuota.local_date == OLD))
        )
        owners = set(
            session.scalars(select(WarmupJob.mailbox_id).where(WarmupJob.id.in_(history.held)))
        )
    assert kept == owners and len(kept) == 2


def test_retention_is_off_or_at_least_a_week_and_a_day():
    assert load_settings({"WARMUP_RETENTION_DAYS": "0"}).retention_days == 0
    assert load_settings({"WARMUP_RETENTION_DAYS": "8"}).retention_days == 8
    with pytest.raises(SettingsError) as error:
        load_settings({"WARMUP_RETENTION_DAYS": "7", "WARMUP_RETENTION_BATCH_ROWS": "0"})
    message = str(error.value)
    assert "WARMUP_RETENTION_DAYS='7' must be 0 (keep everything) or at least 8 days" in message
    assert "WARMUP_RETENTION_BATCH_ROWS='0' must be a whole number above 0" in message
