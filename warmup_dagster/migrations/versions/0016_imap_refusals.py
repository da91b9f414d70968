"""IMAP logins refused: `imap_refusals` keeps one row per refusal, so health counts them with
the SMTP auth failures over its window and per local date.

Until now a refused IMAP login only paused the mailbox's engagement (`engagement_mailboxes`),
which keeps no history: nothing to backfill from, so the table starts empty. Downgrading
drops it.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_refusals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_imap_refusals_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_refusals")),
    )
    op.create_index("ix_imap_refusals_at", "imap_refusals", ["at"])
    op.create_index(
        "ix_imap_refusals_local_date_mailbox_id", "imap_refusals", ["local_date", "mailbox_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_imap_refusals_local_date_mailbox_id", table_name="imap_refusals")
    op.drop_index("ix_imap_refusals_at", table_name="imap_refusals")
    op.drop_table("imap_refusals")
