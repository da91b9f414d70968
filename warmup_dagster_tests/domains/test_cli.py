"""`warmup domains check` through click's CliRunner: what it prints and its exit code."""

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.db.models import DomainCheck
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.domains import zones
from warmup_dagster_tests.factories import add_mailbox, add_user


@pytest.fixture
def warmup(db_url, tmp_path, dns_env, clock):
    env = {
        **dns_env,
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": clock.now().isoformat(),
    }

    def run(*args: str, **more: str):
        return CliRunner().invoke(main, list(args), env={**env, **more})

    return run


@pytest.fixture
def pool(engine, cipher, clock):
    with Session(engine) as session:
        for email, owner in (("a@good.test", "ann"), ("b@badspf.test", "bob")):
            user = add_user(session, owner, clock.now())
            add_mailbox(session, user, email, clock.now(), cipher, smtp_host=zones.SMTP)
        session.commit()


def test_a_good_domain_prints_every_check_and_exits_0(warmup, pool):
    result = warmup("domains", "check", "good.test")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "good.test  PASS"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["PASS", "mx"], ["PASS", "spf"], ["PASS", "dkim"], ["PASS", "dmarc"],
        ["PASS", "blocklists"],
    ]  # fmt: skip
    assert "fix:" not in result.output


def test_a_failing_domain_says_what_to_fix_is_stored_and_exits_1(warmup, pool, engine):
    result = warmup("domains", "check", "badspf.test", WARMUP_DOMAIN_GATE="hold")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "badspf.test  FAIL  (held out of planning until fixed (WARMUP_DOMAIN_GATE=hold))"
    )
    spf = lines.index(next(line for line in lines if line.split()[:2] == ["FAIL", "spf"]))
    assert lines[spf + 1].strip().startswith("fix: add the SMTP server to the record")
    assert "fix: publish a TXT record at _dmarc.badspf.test: v=DMARC1; p=none" in result.output
    with Session(engine) as session:
        assert session.get(DomainCheck, "badspf.test").gate_reason.startswith("SPF: ")


def test_every_domain_of_the_pool_with_a_summary(warmup, pool):
    result = warmup("domains", "check")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "2 domains: 1 pass, 0 warn, 1 fail"
    assert "flagged; still planned (WARMUP_DOMAIN_GATE=flag)" in result.output


def test_a_domain_outside_the_pool_is_checked_against_the_hosts_given(warmup, pool, engine):
    result = warmup(
        "domains", "check", "iplisted.test", "--smtp-host", zones.LISTED_SMTP, "--selector", "nope"
    )
    assert result.exit_code == 1, result.output
    assert "not stored" in result.output.splitlines()[0]
    assert "listed: 192.0.2.66 on bl.test (127.0.0.4)" in result.output
    assert "no DKIM key at nope._domainkey" in result.output
    with Session(engine) as session:
        assert session.get(DomainCheck, "iplisted.test") is None


def test_an_empty_pool_has_nothing_to_check(warmup):
    result = warmup("domains", "check")
    assert result.exit_code == 0 and "no mailboxes yet" in result.output
