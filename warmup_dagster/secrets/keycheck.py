"""Which key the stored credentials are encrypted with, checked before any is read or written.

The database keeps one row (`secret_key_check`): an HMAC of a fixed text under the key
(`Cipher.check_value`) and the message-token key encrypted with it. Every command and run
that reads or writes credentials calls `verify` first, so a process with another key stops
with one message before it writes anything, instead of storing credentials under a second
key (or pausing every mailbox whose password it can't read).

The first write of credentials (an import) records the check. A database that has
credentials from before the check existed gets it from the first process that finds every
one of them decrypts with its key; if any does not, that process stops and says how many.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from warmup_dagster.crypto import SECRET_KEY_VAR, Cipher, SecretKeyError
from warmup_dagster.db.dialect import hold_lock, insert_if_absent, is_postgresql
from warmup_dagster.db.models import SecretKeyCheck
from warmup_dagster.secrets.columns import CREDENTIALS

# Held by every transaction that writes credentials or the check (`writing=True`), so an
# import and a rotation never interleave.
LOCK = "warmup secret key"
ROW_ID = 1


class KeyMismatch(SecretKeyError):
    """The key in use is not the one the database's credentials are encrypted with."""


def mismatch_message(var: str = SECRET_KEY_VAR) -> str:
    return (
        f"{var} is not the key this database's credentials are encrypted with (its key check "
        "differs); nothing was read or written. Set it to the key they were encrypted with "
        "(after `warmup secrets rotate`, the new key)"
    )


def verify(conn: Connection, cipher: Cipher, now: datetime, *, writing: bool = False) -> bytes:
    """Check that `cipher`'s key is the database's; return the message-token key.

    Args:
        conn: A connection in a transaction; with `writing`, the transaction that will write
            credentials (on SQLite a `db.engine.writing` one).
        cipher: The key in use.
        now: When a check recorded now is set.
        writing: The caller is about to write credentials: holds `LOCK` until its transaction
            ends and records the check if there is none yet.

    Returns:
        The token key stored with the check; with no check stored yet, the one derived from
        `cipher`'s key (what the first check will store).

    Raises:
        KeyMismatch: another key's check is stored, or (no check yet) stored credentials do
            not decrypt with this key.
    """
    if writing:
        hold_lock(conn, LOCK)
    stored = _stored(conn, for_update=writing)
    if stored is None:
        if _trial_decrypt(conn, cipher) or writing:
            insert_if_absent(conn, SecretKeyCheck.__table__, ["id"], _new_check(cipher, now))
        stored = _stored(conn, for_update=writing)
        if stored is None:  # nothing stored and nothing to record: the first import will
            return cipher.derived_token_key
    check_value, token_key_enc = stored
    if not hmac.compare_digest(check_value, cipher.check_value):
        raise KeyMismatch(mismatch_message())
    return bytes.fromhex(cipher.decrypt(token_key_enc))


def _new_check(cipher: Cipher, now: datetime) -> dict[str, object]:
    return {
        "id": ROW_ID,
        "check_value": cipher.check_value,
        "token_key_enc": cipher.encrypt(cipher.derived_token_key.hex()),
        "set_at": now,
    }


def _stored(conn: Connection, *, for_update: bool) -> tuple[str, str] | None:
    query = select(SecretKeyCheck.check_value, SecretKeyCheck.token_key_enc).where(
        SecretKeyCheck.id == ROW_ID
    )
    if for_update and is_postgresql(conn):
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else (row.check_value, row.token_key_enc)


def _trial_decrypt(conn: Connection, cipher: Cipher) -> int:
    """Decrypt every stored credential (once per database: before its check is recorded);
    return how many there are."""
    total = bad = 0
    for encrypted in CREDENTIALS:
        for (value,) in conn.execute(select(encrypted.column).where(encrypted.column.is_not(None))):
            total += 1
            try:
                cipher.decrypt(value)
            except SecretKeyError:
                bad += 1
    if bad:
        raise KeyMismatch(
            f"{bad:,} of {total:,} stored credentials can't be decrypted with "
            f"{SECRET_KEY_VAR}: it is not the key they were encrypted with (or they were "
            "stored under two keys); nothing was written"
        )
    return total
