"""`warmup secrets rotate`: every encrypted value re-keyed with the check in one transaction;
interrupted, nothing changes; the message-token key survives it. Both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.db.models import Mailbox
from warmup_dagster.progress import SilentProgress
from warmup_dagster.secrets import keycheck, rotate
from warmup_dagster.secrets.columns import ENCRYPTED_COLUMNS
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.secrets.conftest import MISMATCH, OTHER_SECRET, import_boxes
from warmup_dagster_tests.secrets.snapshot import database_rows

EMAILS = [f"m{k}@d{k}.example" for k in range(5)]


def _plaintexts(engine, cipher) -> dict[str, list[str]]:
    """Every encrypted column's values, decrypted with `cipher`, by column."""
    with engine.connect() as conn:
        return {
            str(c): sorted(
                cipher.decrypt(v)
                for (v,) in conn.execute(select(c.column).where(c.column.is_not(None)))
            )
            for c in ENCRYPTED_COLUMNS
        }


def test_rotate_rekeys_every_credential_and_the_check(cli, engine, cipher, clock):
    import_boxes(engine, cipher, clock, *EMAILS)
    before = _plaintexts(engine, cipher)
    assert len(before["mailboxes.smtp_password_enc"]) == 5

    result = cli("secrets", "rotate", WARMUP_NEW_SECRET_KEY=OTHER_SECRET)
    assert result.exit_code == 0, result.output
    assert (
        "re-keyed 11 values (mailboxes.smtp_password_enc: 5, mailboxes.imap_password_enc: 5, "
        "secret_key_check.token_key_enc: 1)" in result.output
    )
    new = Cipher(OTHER_SECRET)
    assert _plaintexts(engine, new) == before
    # the old key is refused now, by the check, and the new one reads everything
    assert MISMATCH in cli("mailboxes", "list").output
    assert cli("mailboxes", "list", secret=OTHER_SECRET).exit_code == 0
    with engine.begin() as conn:
        # the message-token key is the first key's still: mail sent before is recognised
        assert keycheck.verify(conn, new, clock.now()) == token_key(TEST_SECRET)
    # the new key given again: nothing to do
    again = cli("secrets", "rotate", secret=OTHER_SECRET, WARMUP_NEW_SECRET_KEY=OTHER_SECRET)
    assert again.exit_code == 1 and "the new key is the key in use already" in again.output


def test_the_new_key_from_a_file_and_the_messages_without_one(cli, engine, cipher, clock, tmp_path):
    import_boxes(engine, cipher, clock, *EMAILS[:2])
    missing = cli("secrets", "rotate")
    assert missing.exit_code == 1
    assert "give the new key in WARMUP_NEW_SECRET_KEY or with --new-key-file" in missing.output
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    result = cli("secrets", "rotate", "--new-key-file", str(short))
    assert result.exit_code == 1
    assert f"the key in {short} is shorter than 16 characters" in result.output
    key_file = tmp_path / "new.key"
    key_file.write_text(OTHER_SECRET + "\n")  # as `echo KEY > FILE` writes it
    result = cli("secrets", "rotate", "--new-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert cli("mailboxes", "list", secret=OTHER_SECRET).exit_code == 0


def test_a_rotation_under_another_key_changes_nothing(cli, engine, cipher, clock):
    import_boxes(engine, cipher, clock, *EMAILS[:2])
    before = database_rows(engine)
    result = cli("secrets", "rotate", secret=OTHER_SECRET, WARMUP_NEW_SECRET_KEY="x" * 20)
    assert result.exit_code == 1 and MISMATCH in result.output
    assert database_rows(engine) == before


class Interrupt(SilentProgress):
    """Ctrl-C once the first chunk of the second column is written."""

    stages: list[str] = []

    def __init__(self, stage: str = "", total: int | None = None) -> None:
        super().__init__(stage, total)
        Interrupt.stages.append(stage)

    def update(self, n: int = 1) -> None:
        super().update(n)
        if len(Interrupt.stages) == 2:
            raise KeyboardInterrupt


def test_an_interrupted_rotation_changes_nothing(engine, cipher, clock, monkeypatch):
    import_boxes(engine, cipher, clock, *EMAILS)
    before = database_rows(engine)
    monkeypatch.setattr(rotate, "CHUNK", 2)  # several statements per column
    Interrupt.stages = []
    with pytest.raises(KeyboardInterrupt):
        rotate.rotate(engine, cipher, Cipher(OTHER_SECRET), clock.now(), progress=Interrupt)
    assert Interrupt.stages == [
        "re-key mailboxes.smtp_password_enc",
        "re-key mailboxes.imap_password_enc",
    ]
    assert database_rows(engine) == before
    assert _plaintexts(engine, cipher)["mailboxes.imap_password_enc"][0].startswith("imap-secret")


def test_a_value_that_does_not_decrypt_stops_the_rotation_and_changes_nothing(
    engine, cipher, clock
):
    """A credential written under another key behind the check's back (by hand, say) is found
    by the rotation, after it re-keyed others in its transaction: all of it is rolled back."""
    import_boxes(engine, cipher, clock, *EMAILS)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Mailbox)
            .where(Mailbox.email == EMAILS[-1])
            .values(imap_password_enc=Cipher("a-third-key-nobody-has").encrypt("x"))
        )
    before = database_rows(engine)
    with pytest.raises(SecretKeyError, match="can't be decrypted"):
        rotate.rotate(engine, cipher, Cipher(OTHER_SECRET), clock.now())
    assert database_rows(engine) == before
