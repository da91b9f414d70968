"""The stored results, and what planning does with them: the gate holds a domain failing SPF
or DMARC (WARMUP_DOMAIN_GATE=hold) and a blocklist listing throttles its mailboxes."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import RealClock
from warmup_dagster.db.models import DailyQuota, DomainCheck, DomainStatus, Mailbox
from warmup_dagster.domains import store
from warmup_dagster.domains.checker import Checker
from warmup_dagster.domains.model import Target
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster_tests.domains import zones
from warmup_dagster_tests.factories import add_mailbox, add_user

# A mailbox on each domain: (address, owner, SMTP host).
POOL = [
    ("a@good.test", "ann", zones.SMTP),
    ("b@badspf.test", "bob", zones.SMTP),
    ("c@listed.test", "cat", zones.SMTP),
    ("d@iplisted.test", "dan", zones.LISTED_SMTP),
]


def _pool(engine, cipher, clock):
    with Session(engine) as session:
        for email, owner, host in POOL:
            user = add_user(session, owner, clock.now())
            add_mailbox(session, user, email, clock.now(), cipher, smtp_host=host, ramp_start=10)
        session.commit()


def _check_and_store(engine, settings, clock):
    reports = list(Checker(settings, RealClock()).check_all(store.targets(engine)))
    store.save(engine, reports, clock.now())
    return {r.domain: r for r in reports}


def _quotas(engine):
    with Session(engine) as session:
        rows = session.execute(
            select(DailyQuota.mailbox_id, DailyQuota.quota, DailyQuota.reason)
        ).all()
        emails = dict(session.execute(select(Mailbox.id, Mailbox.email)).all())
    return {emails[m]: (q, r) for m, q, r in rows}


def test_targets_carry_each_domains_smtp_hosts_and_unchecked_ones_show(
    engine, cipher, clock, dns_settings
):
    _pool(engine, cipher, clock)
    assert store.targets(engine, ["GOOD.test"]) == [Target("good.test", (zones.SMTP,))]
    assert store.unchecked(engine) == sorted(e.split("@")[1] for e, _, _ in POOL)
    _check_and_store(engine, dns_settings, clock)
    assert store.unchecked(engine) == []


def test_results_are_stored_and_a_listing_keeps_its_first_date(engine, cipher, clock, dns_settings):
    _pool(engine, cipher, clock)
    first = clock.now()
    _check_and_store(engine, dns_settings, clock)
    clock.advance(days=1)
    _check_and_store(engine, dns_settings, clock)
    with Session(engine) as session:
        rows = {r.domain: r for r in session.scalars(select(DomainCheck))}
    assert rows["good.test"].status == DomainStatus.PASS and not rows["good.test"].listed
    assert rows["good.test"].checked_at == clock.now()
    assert rows["badspf.test"].gate_reason.startswith("SPF: does not authorise")
    assert rows["listed.test"].listed and rows["listed.test"].listed_since == first
    assert [c["kind"] for c in rows["listed.test"].checks] == [
        "mx", "spf", "dkim", "dmarc", "blocklists",
    ]  # fmt: skip
    # delisted: the next check clears the listing and its date
    unlisted = dns_settings.model_copy(update={"dnsbl_zones": ""})
    _check_and_store(engine, unlisted, clock)
    with Session(engine) as session:
        row = session.get(DomainCheck, "listed.test")
        assert not row.listed and row.listed_since is None


def test_hold_keeps_a_failing_domain_out_of_planning_and_listings_throttle(
    engine, cipher, clock, dns_settings
):
    _pool(engine, cipher, clock)
    _check_and_store(engine, dns_settings, clock)
    held = dns_settings.model_copy(update={"domain_gate": "hold"})
    plan_mailboxes(engine, [e for e, _, _ in POOL], held, clock)
    quotas = _quotas(engine)
    assert quotas["a@good.test"] == (10, None)
    quota, reason = quotas["b@badspf.test"]
    assert quota == 0
    assert reason.startswith("held: domain badspf.test fails SPF: does not authorise")
    # listed by name or by the SMTP host's address: half the quota (WARMUP_DNSBL_THROTTLE)
    for email, domain in (("c@listed.test", "listed.test"), ("d@iplisted.test", "iplisted.test")):
        quota, reason = quotas[email]
        assert quota == 5
        assert reason == (
            f"domain {domain} blocklisted since {clock.now():%Y-%m-%d %H:%M} UTC: throttled to 50%"
        )


def test_flag_reports_but_plans_and_a_fixed_domain_is_planned_again(
    engine, cipher, clock, dns_settings
):
    _pool(engine, cipher, clock)
    _check_and_store(engine, dns_settings, clock)
    plan_mailboxes(engine, ["b@badspf.test"], dns_settings, clock)  # the default: flag
    assert _quotas(engine)["b@badspf.test"] == (10, None)
    held = dns_settings.model_copy(update={"domain_gate": "hold"})
    plan_mailboxes(engine, ["b@badspf.test"], held, clock)
    assert _quotas(engine)["b@badspf.test"][0] == 0
    # fixed: a check that finds it passing lifts the gate at the next planning
    with Session(engine) as session, session.begin():
        session.get(DomainCheck, "badspf.test").gate_reason = None
    clock.advance(minutes=5)
    plan_mailboxes(engine, ["b@badspf.test"], held, clock)
    assert _quotas(engine)["b@badspf.test"] == (10, None)


def test_a_domain_not_checked_yet_is_planned_as_before(engine, cipher, clock, dns_settings):
    _pool(engine, cipher, clock)
    held = dns_settings.model_copy(update={"domain_gate": "hold"})
    plan_mailboxes(engine, [e for e, _, _ in POOL], held, clock)
    assert {q for q, _ in _quotas(engine).values()} == {10}


def test_results_of_domains_gone_from_the_pool_are_removed(engine, cipher, clock, dns_settings):
    _pool(engine, cipher, clock)
    store.save(
        engine,
        Checker(dns_settings, RealClock()).check_all([Target("nomx.test", (zones.SMTP,))]),
        clock.now() - timedelta(hours=1),
    )
    assert store.forget_gone(engine) == 1
    assert store.reports(engine) == []
