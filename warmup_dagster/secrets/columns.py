"""Every column that holds a value encrypted with `WARMUP_SECRET_KEY`.

The key check (`keycheck`) trial-decrypts these when a database has credentials but no check
yet, and `warmup secrets rotate` re-encrypts every one of them. A new encrypted column (an
column is added here and nowhere else; NULL values are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Table

from warmup_dagster.db.models import Mailbox, MailboxOAuth, SecretKeyCheck


@dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted column, found by its table and name; rows are keyed by `key`."""

    table: Table
    name: str
    key: str = "id"

    @property
    def column(self) -> Column:
        return self.table.c[self.name]

    @property
    def id(self) -> Column:
        return self.table.c[self.key]

    def __str__(self) -> str:
        return f"{self.table.name}.{self.name}"


# The mailboxes' credentials: what the key check looks at when it has no check value yet.
CREDENTIALS = (
    EncryptedColumn(Mailbox.__table__, "smtp_password_enc"),
    EncryptedColumn(Mailbox.__table__, "imap_password_enc"),
    EncryptedColumn(MailboxOAuth.__table__, "refresh_token_enc", key="mailbox_id"),
    EncryptedColumn(MailboxOAuth.__table__, "access_token_enc", key="mailbox_id"),
)
# Everything `warmup secrets rotate` re-encrypts: the credentials and the message-token key
# kept with the check.
ENCRYPTED_COLUMNS = (*CREDENTIALS, EncryptedColumn(SecretKeyCheck.__table__, "token_key_enc"))
