"""The fill_rate asset, its checks, its partitions and its sensor, through Dagster itself."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.assets.fill_rate import fill_rate
from warmup_dagster.clock import RealClock
from warmup_dagster.db.models import JobKind, JobStatus, Mailbox, Placement, WarmupJob
from warmup_dagster.definitions import defs
from warmup_dagster.engagement.record import record_placements
from warmup_dagster.partitions import EARLIEST_TIMEZONE, daily_partitions, fill_days, last_day
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.fill_rate import (
    days_due,
    days_open,
    fill_rate_sensor,
    latest_closed,
)
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.factories import add_engagement, add_job
from warmup_dagster_tests.fill.days import BOXES, DAY

MONDAY = DAY.date()


def use_clock(monkeypatch, start: datetime) -> None:
    """The runs' and sensors' clock: real speed from `start` (anchored in the database)."""
    monkeypatch.setenv("WARMUP_CLOCK_START", start.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")


def values(metadata):
    return {k: v.value for k, v in metadata.items()}


def test_materializing_a_date_records_its_figures_and_checks(
    sent_day, db_url, instance, monkeypatch
):
    use_clock(monkeypatch, DAY.replace(hour=23))
    resources = {"warmup_db": WarmupDatabase(database_url=db_url)}
    result = dg.materialize(
        [fill_rate], resources=resources, partition_key="2026-03-02", instance=instance
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.partition == "2026-03-02"
    metadata = values(event.materialization.metadata)
    assert (metadata["sent"], metadata["quota"], metadata["mailboxes_under_quota"]) == (4, 9, 2)
    assert metadata["day_closed"] is True
    worst = metadata["worst_mailboxes"]
    assert [r.data["email"] for r in worst.records] == [BOXES[2], BOXES[0]]
    assert worst.records[1].data["fill"] == 0.667
    assert "| smtp_5xx | 1 |" in metadata["failures_by_reason"]
    assert "| 2026-03-02 09:00 | 4 |" in metadata["sends_per_hour"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {name: e.passed for name, e in checks.items()} == {
        "quota_met": False,
        "rules_held": True,
        "plan_feasible": False,
        "counters_agree": True,
        "no_stuck_jobs": True,
    }
    assert checks["quota_met"].severity is dg.AssetCheckSeverity.ERROR
    assert values(checks["quota_met"].metadata)["below"].startswith(f"{BOXES[2]}: 0 of 4")


def test_where_the_dates_mail_landed_is_in_its_metadata(
    sent_day, engine, db_url, instance, monkeypatch
):
    """Engagements of the day's four sends recorded with known placements (through the
    engagement package's writer), one still looked for, one of another date: the date's
    metadata has those counts and rates, and the senders with mail in spam or not found."""
    reader = sent_day.ids[BOXES[3]]  # the pool mailbox that received the mail
    by_recipient = {
        "fine@x.example": Placement.INBOX,
        "ok@x.example": Placement.SPAM,
        "a@x.example": Placement.INBOX,
        "b@x.example": Placement.NOT_FOUND,
    }
    with Session(engine) as session, session.begin():
        sent = session.scalars(
            select(WarmupJob).where(
                WarmupJob.kind == JobKind.SEND, WarmupJob.status == JobStatus.SENT
            )
        ).all()
        assert sorted(j.recipient_email for j in sent) == sorted(by_recipient)
        decided = {
            add_engagement(session, j, recipient_id=reader).id: by_recipient[j.recipient_email]
            for j in sent
        }
        box1 = session.get_one(Mailbox, sent_day.ids[BOXES[1]])
        to = session.get_one(Mailbox, reader)
        later = DAY.replace(hour=11)
        add_engagement(session, add_job(session, box1, to, later, JobStatus.SENT))  # pending
        sunday = add_job(session, box1, to, DAY - timedelta(hours=13), JobStatus.SENT)
        add_engagement(session, sunday, Placement.SPAM)  # local date 2026-03-01
    record_placements(engine, decided, sent_day.clock.now())

    use_clock(monkeypatch, DAY.replace(hour=23))
    result = dg.materialize(
        [fill_rate],
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
        partition_key="2026-03-02",
        instance=instance,
    )
    [event] = result.get_asset_materialization_events()
    metadata = values(event.materialization.metadata)
    placement = {
        k: metadata[k]
        for k in (
            "placed",
            "placed_inbox",
            "placed_spam",
            "placed_not_found",
            "placement_pending",
            "inbox_rate",
            "spam_rate",
            "not_found_rate",
            "bounces",
            "auth_failures",
        )
    }
    assert placement == {
        "placed": 4,
        "placed_inbox": 2,
        "placed_spam": 1,
        "placed_not_found": 1,
        "placement_pending": 1,
        "inbox_rate": 0.5,
        "spam_rate": 0.25,
        "not_found_rate": 0.25,
        "bounces": 1,  # box0's mail to code550@, refused for good
        "auth_failures": 0,
    }
    assert [r.data for r in metadata["worst_placement"].records] == [
        {
            "email": BOXES[0],
            "placed": 2,
            "inbox_rate": 0.5,
            "spam_rate": 0.5,
            "not_found_rate": 0.0,
        },
        {
            "email": BOXES[1],
            "placed": 2,
            "inbox_rate": 0.5,
            "spam_rate": 0.0,
            "not_found_rate": 0.5,
        },
    ]

    # A date whose mail nobody placed has counts of 0 and no rates.
    result = dg.materialize(
        [fill_rate],
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
        partition_key="2026-02-28",
        instance=instance,
    )
    [event] = result.get_asset_materialization_events()
    metadata = values(event.materialization.metadata)
    assert (metadata["placed"], metadata["placement_pending"]) == (0, 0)
    assert not {"inbox_rate", "spam_rate", "not_found_rate"} & set(metadata)


def test_the_sensors_job_materializes_past_dates_one_run_each(
    sent_day, db_url, instance, monkeypatch
):
    """What a backfill of a range does: one run per date, each with that date's figures."""
    use_clock(monkeypatch, DAY.replace(hour=23))
    monkeypatch.setenv("WARMUP_DATABASE_URL", db_url)
    job = defs.resolve_job_def("report_fill_rate")
    sent = {}
    for key in ("2026-03-01", "2026-03-02"):
        result = job.execute_in_process(partition_key=key, instance=instance)
        [event] = result.get_asset_materialization_events()
        sent[event.materialization.partition] = event.materialization.metadata["sent"].value
        assert len(result.get_asset_check_evaluations()) == 5
    assert sent == {"2026-03-01": 0, "2026-03-02": 4}


def test_a_date_closes_a_lease_after_its_last_window():
    settings = load_settings({"WARMUP_SEND_LEASE_SECONDS": "600"})
    utc = {"UTC"}
    assert latest_closed(DAY.replace(hour=22, minute=9), utc, settings) == date(2026, 3, 1)
    assert latest_closed(DAY.replace(hour=22, minute=10), utc, settings) == MONDAY
    # 22:00 in Los Angeles is 06:00 UTC the next day
    both = {"UTC", "America/Los_Angeles"}
    assert latest_closed(DAY.replace(hour=23), both, settings) == date(2026, 3, 1)
    assert latest_closed(DAY + timedelta(days=1, hours=6, minutes=10), both, settings) == MONDAY


@pytest.mark.parametrize(
    ("cursor", "closed", "last", "expected"),
    [
        (None, "2026-03-02", "2026-03-03", ["2026-03-02"]),  # a first tick: the latest alone
        ("2026-02-27", "2026-03-02", "2026-03-03", ["2026-02-28", "2026-03-01", "2026-03-02"]),
        ("2026-03-02", "2026-03-02", "2026-03-03", []),  # done
        ("2026-03-05", "2026-03-02", "2026-03-03", []),  # the clock moved back
        ("2026-02-27", "2026-03-02", "2026-02-28", ["2026-02-28"]),  # ahead of the partitions
        (None, "2025-12-30", "2026-03-03", []),  # before the first partition
    ],
)
def test_the_dates_a_tick_launches(cursor, closed, last, expected):
    found = days_due(cursor, date.fromisoformat(closed), date(2026, 1, 1), date.fromisoformat(last))
    assert [d.isoformat() for d in found] == expected


def _tick(instance, db_url, cursor=None):
    resources = {"warmup_db": WarmupDatabase(database_url=db_url)}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        return fill_rate_sensor(context)


def test_the_sensor_launches_each_closed_date_once(sent_day, db_url, instance, monkeypatch):
    use_clock(monkeypatch, DAY + timedelta(days=1, hours=2))  # Tuesday 02:00 UTC
    monkeypatch.setenv("WARMUP_FILL_RATE_REFRESH_SECONDS", "0")  # closed dates only
    result = _tick(instance, db_url)
    [request] = result.run_requests
    assert (request.partition_key, request.run_key, result.cursor) == (
        "2026-03-02",
        "fill-2026-03-02",
        "2026-03-02",
    )
    again = _tick(instance, db_url, cursor=result.cursor)
    assert isinstance(again, dg.SkipReason)
    assert "2026-03-02 is the latest closed date" in again.skip_message


def test_an_open_date_gets_its_figures_so_far_once_per_refresh_period(
    sent_day, db_url, instance, monkeypatch
):
    """Monday 12:00 UTC: Sunday has closed (launched, final), Monday is open; its figures so far
    are launched once an hour (the run key names the hour), the cursor stays on the closed."""
    use_clock(monkeypatch, DAY.replace(hour=12))
    first = _tick(instance, db_url)
    keys = [(r.partition_key, r.run_key) for r in first.run_requests]
    hour = int(DAY.replace(hour=12).timestamp())
    assert keys == [("2026-03-01", "fill-2026-03-01"), ("2026-03-02", f"fill-2026-03-02-at-{hour}")]
    assert first.cursor == "2026-03-01"
    later = _tick(instance, db_url, cursor=first.cursor)  # the same hour: the same key again,
    assert [r.run_key for r in later.run_requests] == [f"fill-2026-03-02-at-{hour}"]  # deduped
    monkeypatch.setenv("WARMUP_CLOCK_START", DAY.replace(hour=13, minute=1).isoformat())
    next_hour = _tick(instance, db_url, cursor=first.cursor)
    assert [r.run_key for r in next_hour.run_requests] == [f"fill-2026-03-02-at-{hour + 3600}"]


def test_the_open_dates_are_those_begun_in_any_zone_after_the_closed_one():
    now = DAY.replace(hour=12)  # Monday 12:00 UTC: Tuesday has begun in Kiritimati (UTC+14)
    assert days_open(now, {"UTC"}, date(2026, 3, 1)) == [MONDAY]
    assert days_open(now, {"UTC", "Pacific/Kiritimati"}, date(2026, 3, 1)) == [
        MONDAY,
        MONDAY + timedelta(days=1),
    ]
    assert days_open(now, {"UTC"}, MONDAY) == []


def test_a_clock_ahead_of_real_time_waits_for_the_partition(
    sent_day, db_url, instance, monkeypatch
):
    ahead = RealClock().now() + timedelta(days=30)
    use_clock(monkeypatch, ahead)
    result = _tick(instance, db_url, cursor=last_day(fill_days).isoformat())
    assert isinstance(result, dg.SkipReason)
    assert "no daily partition yet" in result.skip_message
    assert "WARMUP_FILL_RATE_DAYS_AHEAD" in result.skip_message


def test_partitions_run_from_the_start_date_to_the_date_begun_in_utc14_plus_days_ahead():
    settings = load_settings(
        {"WARMUP_FILL_RATE_START_DATE": "2026-02-01", "WARMUP_FILL_RATE_DAYS_AHEAD": "3"}
    )
    partitions = daily_partitions(settings)
    assert partitions.get_first_partition_key() == "2026-02-01"
    begun = RealClock().now().astimezone(ZoneInfo(EARLIEST_TIMEZONE)).date()
    assert last_day(partitions) == begun + timedelta(days=3)
    assert last_day(fill_days) == begun  # the defaults
    assert datetime(2026, 1, 1, tzinfo=UTC).date().isoformat() in fill_days.get_partition_keys()
