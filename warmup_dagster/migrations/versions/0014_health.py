"""Mailbox health: each mailbox's state and figures, engagements by local date, 5xx by time.

`mailbox_health` holds each mailbox's latest health (written by the `mailbox_health` asset).
`engagements.local_date` is the send's local day, so placement per mailbox and local date is
an index range like the fill rate's days; existing rows take their job's day. A partial
index on `send_log` keeps only the permanent refusals (bounces, refused logins) by time, so
health reads them without a scan of the day's million sends. Downgrading drops all three.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

STATES = ("HEALTHY", "WATCH", "THROTTLED", "PAUSED")
REFUSALS = "smtp_code >= 500"


def upgrade() -> None:
    op.create_table(
        "mailbox_health",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="state", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("inbox", sa.Integer(), nullable=False),
        sa.Column("spam", sa.Integer(), nullable=False),
        sa.Column("not_found", sa.Integer(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("auth_failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_health_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_health")),
    )
    op.create_index("ix_mailbox_health_state", "mailbox_health", ["state"])
    # Plain ALTER TABLE on both databases: no batch rebuild of a table with foreign keys.
    op.add_column("engagements", sa.Column("local_date", sa.Date(), nullable=True))
    op.execute(
        "UPDATE engagements SET local_date = "
        "(SELECT local_date FROM warmup_jobs WHERE warmup_jobs.id = engagements.job_id)"
    )
    op.create_index(
        "ix_engagements_local_date_sender_mailbox_id",
        "engagements",
        ["local_date", "sender_mailbox_id"],
    )
    op.create_index(
        "ix_send_log_refusals",
        "send_log",
        ["created_at", "mailbox_id"],
        postgresql_where=sa.text(REFUSALS),
        sqlite_where=sa.text(REFUSALS),
    )


def downgrade() -> None:
    op.drop_index("ix_send_log_refusals", table_name="send_log")
    op.drop_index("ix_engagements_local_date_sender_mailbox_id", table_name="engagements")
    op.execute("ALTER TABLE engagements DROP COLUMN local_date")
    op.drop_index("ix_mailbox_health_state", table_name="mailbox_health")
    op.drop_table("mailbox_health")
