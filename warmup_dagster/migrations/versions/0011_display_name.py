"""Mailboxes carry a display name: the name in their mail's From: and signature.

Optional in the import (`display_name`); a mailbox without one keeps NULL and its name is
derived from its address when its mail is composed, so existing mailboxes need no backfill.
Downgrading drops the column.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN on both databases (SQLite has it since 3.35): a batch operation
    # would rebuild `mailboxes` on SQLite, and dropping the old table with foreign keys on
    # cascades to every job and log row of its mailboxes.
    op.execute("ALTER TABLE mailboxes DROP COLUMN display_name")
