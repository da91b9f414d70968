"""The database knows its key: an import, a command or a run under another key stops before
it writes anything, on both databases; an unusable key gets one message everywhere."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock, clock_from_settings
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.db.models import Mailbox, SecretKeyCheck, WarmupJob
from warmup_dagster.jobs import engage_job, send_job
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.secrets import keycheck
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_mailbox, add_user
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row
from warmup_dagster_tests.secrets.conftest import MISMATCH, OTHER_SECRET, import_boxes
from warmup_dagster_tests.secrets.snapshot import database_rows
from warmup_dagster_tests.test_sending_dagster import START, add_jobs


def test_an_import_under_another_key_is_refused_and_writes_nothing(engine, cipher, clock):
    with Session(engine) as session:
        assert session.scalar(select(SecretKeyCheck)) is None
    import_boxes(engine, cipher, clock, "a@one.example", dry_run=True)
    with Session(engine) as session:
        assert session.scalar(select(SecretKeyCheck)) is None  # a dry run records nothing
    import_boxes(engine, cipher, clock, "a@one.example")
    with Session(engine) as session:
        check = session.scalar(select(SecretKeyCheck))
        assert check.check_value == cipher.check_value
        assert cipher.decrypt(check.token_key_enc) == token_key(TEST_SECRET).hex()
    before = database_rows(engine)

    other = Cipher(OTHER_SECRET)
    for dry_run in (True, False):
        with pytest.raises(keycheck.KeyMismatch, match=MISMATCH):
            import_boxes(engine, other, clock, "a@one.example", "b@two.example", dry_run=dry_run)
    assert database_rows(engine) == before
    # the right key still imports
    assert import_boxes(engine, cipher, clock, "a@one.example", "b@two.example").created == 1


def test_a_database_with_credentials_and_no_check_gets_it_from_the_key_they_decrypt_with(
    engine, cipher, clock
):
    """Credentials stored before the check existed: the first key they all decrypt with is
    recorded; a key they don't, or credentials under two keys, stop with a count."""
    other = Cipher(OTHER_SECRET)
    with Session(engine) as session, session.begin():
        user = add_user(session, "ann", clock.now())
        for k in range(3):
            add_mailbox(session, user, f"m{k}@x.example", clock.now(), cipher)
        add_mailbox(session, user, "odd@x.example", clock.now(), other)
    before = database_rows(engine)
    for key, bad in ((cipher, 2), (other, 6)):
        with engine.begin() as conn, pytest.raises(keycheck.KeyMismatch) as raised:
            keycheck.verify(conn, key, clock.now())
        assert f"{bad} of 8 stored credentials can't be decrypted" in str(raised.value)
    assert database_rows(engine) == before

    with Session(engine) as session, session.begin():
        session.delete(session.scalar(select(Mailbox).where(Mailbox.email == "odd@x.example")))
    with engine.begin() as conn, pytest.raises(keycheck.KeyMismatch, match="6 of 6"):
        keycheck.verify(conn, other, clock.now())
    with engine.begin() as conn:
        assert keycheck.verify(conn, cipher, clock.now()) == token_key(TEST_SECRET)
    with engine.begin() as conn, pytest.raises(keycheck.KeyMismatch, match=MISMATCH):
        keycheck.verify(conn, other, clock.now())  # now by the recorded check


def _mailbox_commands(tmp_path) -> list[tuple[str, ...]]:
    path = tmp_path / "more.csv"
    path.write_text(csv_text([row("a@one.example"), row("c@three.example")]))
    return [
        ("mailboxes", "import", str(path)),
        ("mailboxes", "import", str(path), "--dry-run"),
        ("mailboxes", "list"),
        ("mailboxes", "pause", "a@one.example", "--reason", "r"),
        ("mailboxes", "resume", "a@one.example"),
    ]


def test_every_mailboxes_command_under_another_key_stops_before_writing(
    cli, engine, cipher, clock, tmp_path
):
    import_boxes(engine, cipher, clock, "a@one.example")
    before = database_rows(engine)
    for command in _mailbox_commands(tmp_path):
        result = cli(*command, secret=OTHER_SECRET)
        assert result.exit_code == 1, (command, result.output)
        assert MISMATCH in result.output, command
        assert database_rows(engine) == before, command
    for command in _mailbox_commands(tmp_path):
        assert cli(*command).exit_code == 0, command


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "is not set"),
        ("too-short", "is shorter than 16 characters"),
        (TEST_SECRET + "\n", "has leading or trailing whitespace"),
    ],
)
def test_an_unusable_key_gets_one_message_from_every_command_that_needs_it(
    cli, engine, cipher, clock, tmp_path, secret, problem
):
    import_boxes(engine, cipher, clock, "a@one.example")
    before = database_rows(engine)
    message = f"WARMUP_SECRET_KEY {problem}: it must be at least 16 characters"
    commands = [("config",), ("db", "upgrade"), ("secrets", "rotate"), *_mailbox_commands(tmp_path)]
    for command in commands:
        result = cli(*command, secret=secret, WARMUP_NEW_SECRET_KEY=OTHER_SECRET)
        assert result.exit_code == 1, (command, result.output)
        assert result.output.count(message) == 1, (command, result.output)
        assert "Traceback" not in result.output
    assert database_rows(engine) == before
    with pytest.raises(SecretKeyError) as raised:  # a run's resource: the same message
        WarmupSecrets(secret_key=secret).cipher  # noqa: B018
    assert message in str(raised.value)


@pytest.mark.parametrize("job", [send_job, engage_job], ids=["sender", "engagement"])
def test_a_run_under_another_key_fails_before_it_writes_anything(
    job, engine, cipher, db_url, instance, monkeypatch
):
    monkeypatch.setenv("WARMUP_CLOCK_START", START.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")
    import_boxes(engine, cipher, FixedClock(START), "a@o.example")
    add_jobs(engine, cipher, 2)  # due now, on a server nothing listens on
    clock_from_settings(load_settings(), engine)  # the clock's anchor, which any run writes
    before = database_rows(engine)
    result = job.execute_in_process(
        resources={
            "warmup_db": WarmupDatabase(database_url=db_url),
            "warmup_secrets": WarmupSecrets(secret_key=OTHER_SECRET),
        },
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert MISMATCH in failure.step_failure_data.error.cause.message
    after = database_rows(engine)
    # The run's beat (`liveness`) is Dagster bookkeeping of the run itself, not data.
    assert [run_id for run_id, _ in after.pop("run_beats")] == [result.run_id]
    assert after == {k: v for k, v in before.items() if k != "run_beats"}
    with Session(engine) as session:
        assert {j.status.name for j in session.scalars(select(WarmupJob))} == {"PENDING"}
