"""Re-keying every encrypted value from one key to another in one transaction.

`rotate` decrypts each value of `columns.ENCRYPTED_COLUMNS` with the key in use, encrypts it
with the new one and moves the key check to the new key, all in one transaction holding the
key check's lock: interrupted anywhere (an error, Ctrl-C, a killed process), it commits
nothing and the database stays wholly under the old key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine

from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.db.engine import chunks, writing
from warmup_dagster.db.models import SecretKeyCheck
from warmup_dagster.progress import ProgressFactory, SilentProgress
from warmup_dagster.secrets import keycheck
from warmup_dagster.secrets.columns import ENCRYPTED_COLUMNS

# Values re-encrypted per UPDATE statement.
CHUNK = 2_000


@dataclass
class Rotated:
    """How many values of each encrypted column were re-keyed."""

    values: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        each = ", ".join(f"{name}: {n:,}" for name, n in self.values.items() if n)
        return f"re-keyed {sum(self.values.values()):,} values ({each})"


def rotate(
    engine: Engine,
    old: Cipher,
    new: Cipher,
    now: datetime,
    progress: ProgressFactory = SilentProgress,
) -> Rotated:
    """Re-encrypt every encrypted value from `old`'s key to `new`'s, and the check with them.

    Raises:
        KeyMismatch: `old` is not the database's key; nothing was changed.
        SecretKeyError: `new` is the key in use already, or a stored value does not decrypt
            with `old` (the transaction is rolled back: nothing was changed).
    """
    if old.check_value == new.check_value:
        raise SecretKeyError("the new key is the key in use already: nothing to rotate")
    rotated = Rotated()
    with writing(engine) as conn:
        # Records the check (and its token key) first if the database has none yet, so the
        # token key is re-keyed with the rest.
        keycheck.verify(conn, old, now, writing=True)
        for encrypted in ENCRYPTED_COLUMNS:
            rows = conn.execute(
                select(encrypted.id, encrypted.column).where(encrypted.column.is_not(None))
            ).all()
            statement = (
                update(encrypted.table)
                .where(encrypted.id == bindparam("row_id"))
                .values({encrypted.name: bindparam("new_value")})
            )
            with progress(f"re-key {encrypted}", len(rows)) as bar:
                for chunk in chunks(rows, CHUNK):
                    params = [
                        {"row_id": row_id, "new_value": new.encrypt(old.decrypt(value))}
                        for row_id, value in chunk
                    ]
                    conn.execute(statement, params)
                    bar.update(len(chunk))
            rotated.values[str(encrypted)] = len(rows)
        conn.execute(
            update(SecretKeyCheck)
            .where(SecretKeyCheck.id == keycheck.ROW_ID)
            .values(check_value=new.check_value, rotated_at=now)
        )
    return rotated
