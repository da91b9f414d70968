"""The domain_health asset, its job and its sensor, through Dagster on both databases."""

import dagster as dg
import pytest
from sqlalchemy.orm import Session

from warmup_dagster.assets.domain_health import domain_health
from warmup_dagster.definitions import defs
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.domains import domain_health_sensor
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.domains import zones
from warmup_dagster_tests.factories import add_mailbox, add_user

POOL = [("a@good.test", "ann"), ("b@badspf.test", "bob"), ("c@listed.test", "cat")]


@pytest.fixture
def pool(engine, cipher, clock, dns_env, monkeypatch):
    for name, value in dns_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WARMUP_CLOCK_START", clock.now().isoformat())
    with Session(engine) as session:
        for email, owner in POOL:
            user = add_user(session, owner, clock.now())
            add_mailbox(session, user, email, clock.now(), cipher, smtp_host=zones.SMTP)
        session.commit()


def _add(engine, cipher, clock, email, owner):
    with Session(engine) as session:
        add_mailbox(session, add_user(session, owner, clock.now()), email, clock.now(), cipher,
                    smtp_host=zones.SMTP)  # fmt: skip
        session.commit()


def _materialize(db_url, instance, **config):
    result = dg.materialize(
        [domain_health],
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
        instance=instance,
        run_config={"ops": {"domain_health": {"config": config}}},
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_materializing_checks_every_domain_and_tables_the_failing_ones(pool, db_url, instance):
    metadata = _materialize(db_url, instance)
    assert metadata["domains_checked"] == 3
    assert (metadata["domains"], metadata["domains_pass"], metadata["domains_fail"]) == (3, 1, 2)
    assert metadata["domains_warn"] == 0
    assert metadata["domains_listed"] == 1
    assert metadata["domains_failing_spf_or_dmarc"] == 1
    assert metadata["gate"] == "flag"
    table = metadata["failing_domains"]
    assert table.startswith("| domain | status | check | found | what to fix |")
    assert (
        "| badspf.test | FAIL | spf | does not authorise smtp.good.test (192.0.2.10): fail |"
        in table
    )
    assert (
        "| listed.test | FAIL | blocklists | listed: listed.test on bl.test (127.0.0.2) |" in table
    )
    assert "good.test |" not in table.replace("badspf.test |", "")


def test_an_import_run_checks_only_the_new_domains(pool, db_url, instance, engine, cipher, clock):
    _materialize(db_url, instance)
    _add(engine, cipher, clock, "d@nomx.test", "dan")
    metadata = _materialize(db_url, instance, unchecked_only=True)
    assert metadata["domains_checked"] == 1
    assert metadata["domains"] == 4 and metadata["domains_fail"] == 3  # nomx.test has no MX
    # by hand, one domain again
    assert _materialize(db_url, instance, domains=["good.test"])["domains_checked"] == 1


def _tick(instance, db_url, cursor=None):
    resources = {"warmup_db": WarmupDatabase(database_url=db_url)}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        return domain_health_sensor(context)


def test_the_sensor_checks_every_domain_once_a_day_and_new_ones_at_once(
    pool, db_url, instance, engine, cipher, clock
):
    today = clock.now().date().isoformat()
    result = _tick(instance, db_url)
    [request] = result.run_requests
    assert request.run_key == f"domains-{today}" and result.cursor == today
    assert request.run_config["ops"]["domain_health"]["config"] == {"unchecked_only": False}
    # the same day: nothing new is nothing to do
    _materialize(db_url, instance)
    skipped = _tick(instance, db_url, cursor=today)
    assert isinstance(skipped, dg.SkipReason)
    assert "no new domain" in skipped.skip_message
    # an import: its new domains at once, under a key that a second tick repeats
    _add(engine, cipher, clock, "d@nomx.test", "dan")
    first, second = _tick(instance, db_url, cursor=today), _tick(instance, db_url, cursor=today)
    assert first.run_key == second.run_key and first.run_key.startswith("domains-new-")
    assert first.run_config["ops"]["domain_health"]["config"] == {"unchecked_only": True}
    # the next day: every domain again
    nextday = _tick(instance, db_url, cursor="2026-03-01")
    assert nextday.run_requests[0].run_key == f"domains-{today}"


def test_the_sensor_skips_when_domain_checks_are_off(pool, db_url, instance, monkeypatch):
    monkeypatch.setenv("WARMUP_DOMAIN_CHECKS", "false")
    result = _tick(instance, db_url)
    assert isinstance(result, dg.SkipReason) and "WARMUP_DOMAIN_CHECKS" in result.skip_message


def test_the_check_domains_job_runs_from_the_definitions(pool, db_url, instance, monkeypatch):
    monkeypatch.setenv("WARMUP_DATABASE_URL", db_url)
    monkeypatch.setenv("WARMUP_SECRET_KEY", TEST_SECRET)
    result = defs.resolve_job_def("check_domains").execute_in_process(instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["domains_checked"].value == 3
