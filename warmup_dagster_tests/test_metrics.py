"""The metrics: real sends through the queue on both databases, then `warmup metrics-server`
as a real process, scraped over HTTP, its values checked against the database and its output
by `promtool check metrics`."""

from __future__ import annotations

import os
import random
import select as selectors
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster import queue
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.db.models import (
    DailyQuota,
    JobKind,
    JobStatus,
    SendLog,
    WarmupJob,
)
from warmup_dagster.queue.counting import count_sends
from warmup_dagster.queue.states import IN_FLIGHT, QUEUED
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.queue.test_ledger import (
    DAY,
    SPAN,
    Day,
    day_settings,
    enqueue_reply,
    mailbox_with_a_wrong_password,
)
from warmup_dagster_tests.sending.test_sender import cert, jobs, mailboxes, server

__all__ = ["cert", "server"]  # fixtures

WARMUP = Path(sys.executable).parent / "warmup"
# The server's clock starts here and all but stands still, so its "now" is this instant.
SCRAPED_AT = DAY.replace(hour=9, minute=50)


def a_morning_of_sends(engine, cipher, server, cert) -> dict[str, int]:
    """Sender runs every 5 minutes from 09:00 to 09:40 on a fixed clock: sends, a reply, a
    4xx, a 5xx, a dropped connection, a refused login, a job over its quota, a claim that is
    abandoned and reports late; at 09:50 a claim still in flight. Returns the mailbox ids."""
    day = Day(engine, cipher, day_settings(cert), DAY.replace(hour=9))
    b0, b1, b2, b3 = mailboxes(engine, cipher, server, n_users=2, per_user=2)
    bad = mailbox_with_a_wrong_password(engine, cipher, server)
    with Session(engine) as session, session.begin():
        ids = {"b0": b0, "b1": b1, "b2": b2, "b3": b3, "bad": bad}
        quotas = {"b0": 3, "b1": 2, "b2": 1, "b3": 2, "bad": 1}
        for name, quota in quotas.items():
            session.add(
                DailyQuota(
                    mailbox_id=ids[name], local_date=DAY.date(), quota=quota, ramp=quota, kept=0,
                    planned=quota, shortfall=0, planned_at=DAY,
                )
            )  # fmt: skip
    at = DAY.replace(hour=9)
    jobs(engine, [b0], ["fine@x.example", "code451@x.example", "code550@x.example"], at=at)
    jobs(engine, [b1], ["drop@x.example", "ok@x.example"], at=at)
    jobs(engine, [b2], ["one@x.example", "two@x.example"], at=at)  # the second is over quota
    jobs(engine, [bad], ["p@x.example"], at=at)
    enqueue_reply(engine, b1, at)
    lost = None
    for minute in range(0, 45, 5):
        day.at(9, minute)
        day.run()
        if minute == 20:
            lost = day.dead_claim(b3, "lost@x.example")
        if minute == 35:  # its lease ran out at 09:30: this step took it over and sent it
            result = queue.Result(lost, Outcome.SENT, 250, "", None, day.clock.now(), "s", "b")
            queue.record(engine, [result], "dead", RetryPolicy(), random.Random(1))
    day.at(9, 50)
    day.dead_claim(b3, "held@x.example")  # in flight, its lease live until 10:00
    return ids


def scrape(url: str) -> tuple[str, dict[tuple[str, tuple], float]]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def promtool_check(text: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is required and missing: `make test` installs it (Debian's prometheus "
            "package, scripts/ensure_promtool.sh)",
            pytrace=False,
        )
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def metrics_server(db_url, tmp_path):
    """`warmup metrics-server` in its own process on a free port; yields its metrics URL."""
    env = {
        **os.environ,
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": SCRAPED_AT.isoformat(),
        "WARMUP_CLOCK_SPEED": "0.0001",
    }
    process = subprocess.Popen(
        [str(WARMUP), "metrics-server", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready, _, _ = selectors.select([process.stdout], [], [], 60)
        line = process.stdout.readline().strip() if ready else ""
        assert line.startswith("serving metrics on http://"), line or "no output in 60 s"
        yield line.removeprefix("serving metrics on ")
    finally:
        process.terminate()
        process.wait(timeout=30)


def expected_errors(engine) -> dict[str, int]:
    """The error counts the send log and the jobs say, classified here by hand."""
    with Session(engine) as session:
        log = list(session.scalars(select(SendLog)))
        refused = list(
            session.scalars(
                select(WarmupJob.error).where(
                    WarmupJob.status == JobStatus.FAILED, WarmupJob.error.like("not sent: %")
                )
            )
        )
    reasons: dict[str, int] = {}

    def add(reason):
        reasons[reason] = reasons.get(reason, 0) + 1

    for e in log:
        if e.late:
            add("late")
        elif e.status is JobStatus.SENT:
            continue
        elif (e.error or "").startswith("abandoned:"):
            add("abandoned")
        elif e.smtp_code == 535:
            add("smtp_auth")
        elif e.smtp_code is None:
            add("connection")
        else:
            add(f"smtp_{e.smtp_code // 100}xx")
    for why in refused:
        add("quota" if why.startswith("not sent: the mailbox's quota") else "expired")
    return reasons


@pytest.mark.slow(20)
def test_the_server_exposes_the_seven_metrics_as_the_database_says(
    engine, cipher, server, cert, metrics_server
):
    ids = a_morning_of_sends(engine, cipher, server, cert)
    text, got = scrape(metrics_server)

    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "warmup_emails_sent",  # the parser drops a counter's _total
        "warmup_emails_per_mailbox",
        "warmup_quota_fill_rate",
        "warmup_cycle_duration_seconds",
        "warmup_queue_depth",
        "warmup_worker_active",
        "warmup_errors",
    } <= families
    assert "warmup_emails_sent_total" in text and "warmup_errors_total" in text

    # Sends that count, by kind: the one counting definition over the whole log.
    with Session(engine) as session:
        sends = count_sends(session, *SPAN, kind=JobKind.SEND)
        replies = count_sends(session, *SPAN, kind=JobKind.REPLY)
        log = list(session.scalars(select(SendLog)))
        in_flight = dict(
            session.execute(
                select(WarmupJob.mailbox_id, func.count())
                .where(WarmupJob.status == IN_FLIGHT)
                .group_by(WarmupJob.mailbox_id)
            ).all()
        )
        depth = {
            (status.name.lower(), str(due).lower()): n
            for status, due, n in session.execute(
                select(WarmupJob.status, WarmupJob.due_at <= SCRAPED_AT, func.count())
                .where(WarmupJob.status.in_(QUEUED))
                .group_by(WarmupJob.status, WarmupJob.due_at <= SCRAPED_AT)
            )
        }
    assert (sends, replies) == (4, 1)  # fine@, ok@, one@, lost@ (once), and the reply
    assert got["warmup_emails_sent_total", (("kind", "send"),)] == sends
    assert got["warmup_emails_sent_total", (("kind", "reply"),)] == replies

    # Each mailbox's day: b0 1 of 3, b1 1 of 2 (its reply uses no quota), b2 1 of 1, b3 2 of
    # 2 (one sent, one in flight), the paused one 0 of 1.
    used = Counter(
        e.mailbox_id
        for e in log
        if e.status is JobStatus.SENT and not e.late and e.kind is JobKind.SEND
    )
    day_used = {name: used[box] + in_flight.get(box, 0) for name, box in ids.items()}
    assert day_used == {"b0": 1, "b1": 1, "b2": 1, "b3": 2, "bad": 0}
    per_mailbox = {
        dict(labels)["le"]: value
        for (name, labels), value in got.items()
        if name == "warmup_emails_per_mailbox_bucket"
    }
    assert {k: per_mailbox[k] for k in ("0.0", "1.0", "2.0", "5.0", "+Inf")} == {
        "0.0": 1, "1.0": 4, "2.0": 5, "5.0": 5, "+Inf": 5,
    }  # fmt: skip
    assert got["warmup_emails_per_mailbox_gsum", ()] == 5
    assert got["warmup_emails_per_mailbox_gcount", ()] == 5
    fill = {
        dict(labels)["le"]: value
        for (name, labels), value in got.items()
        if name == "warmup_quota_fill_rate_bucket"
    }
    # 1/3, 1/2, 1, 1, 0
    assert fill == {
        "0.0": 1, "0.1": 1, "0.25": 1, "0.5": 3, "0.75": 3, "0.9": 3, "1.0": 5, "+Inf": 5,
    }  # fmt: skip
    assert got["warmup_quota_fill_rate_gsum", ()] == pytest.approx(1 / 3 + 1 / 2 + 2)

    # Cycles: every recorded attempt (not the abandoned claim), claim to outcome. The fixed
    # clock stands still within a run; the late outcome came 15 minutes after its claim.
    recorded = [e for e in log if not (e.error or "").startswith("abandoned:")]
    seconds = [(e.created_at - e.claimed_at).total_seconds() for e in recorded]
    assert sorted(seconds)[-2:] == [0.0, 900.0]
    assert got["warmup_cycle_duration_seconds_count", ()] == len(recorded)
    assert got["warmup_cycle_duration_seconds_sum", ()] == pytest.approx(sum(seconds))
    assert got["warmup_cycle_duration_seconds_bucket", (("le", "0.5"),)] == len(recorded) - 1
    assert got["warmup_cycle_duration_seconds_bucket", (("le", "600.0"),)] == len(recorded) - 1
    assert got["warmup_cycle_duration_seconds_bucket", (("le", "+Inf"),)] == len(recorded)

    # Queue depth by status and due; the claim in flight is held by one live run.
    for status in ("pending", "retry", "processing"):
        for due in ("true", "false"):
            key = (("due", due), ("status", status))
            assert got["warmup_queue_depth", key] == depth.get((status, due), 0), key
    assert got["warmup_queue_depth", (("due", "true"), ("status", "processing"))] == 1
    assert got["warmup_worker_active", ()] == 1

    # Errors by reason, against the log and the refused jobs.
    errors = {
        dict(labels)["reason"]: value
        for (name, labels), value in got.items()
        if name == "warmup_errors_total"
    }
    expected = expected_errors(engine)
    assert {k: v for k, v in errors.items() if v} == expected
    for reason in ("smtp_4xx", "smtp_5xx", "connection", "smtp_auth", "quota"):
        assert expected.get(reason), reason
    assert (expected["abandoned"], expected["late"], expected["smtp_5xx"]) == (1, 1, 1)

    # Prometheus asks for OpenMetrics, in which the day's distributions are gauge histograms.
    request = urllib.request.Request(
        metrics_server, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        openmetrics = response.read().decode()
    assert "# TYPE warmup_emails_per_mailbox gaugehistogram" in openmetrics
    assert "# TYPE warmup_quota_fill_rate gaugehistogram" in openmetrics
    assert "# TYPE warmup_errors counter" in openmetrics
    assert openmetrics.endswith("# EOF\n")
    parsed = {f.name for f in openmetrics_families(openmetrics)}
    assert {"warmup_emails_per_mailbox", "warmup_emails_sent", "warmup_errors"} <= parsed

    # Counters do not fall when the queue's day counters are pruned (a month later).
    assert queue.prune_counters(engine, DAY + timedelta(days=30)) > 0
    _, again = scrape(metrics_server)
    for key, value in got.items():
        if key[0] in ("warmup_emails_sent_total", "warmup_errors_total"):
            assert again[key] == value, key
    assert again["warmup_emails_per_mailbox_gsum", ()] == 0  # the day's counters are gone


def test_promtool_fails_a_broken_exposition():
    """The check can fail: a counter without _total and a sample of the wrong type."""
    broken = '# TYPE warmup_emails_sent counter\nwarmup_emails_sent{kind="send"} 4\n'
    assert promtool_check(broken).returncode != 0
