"""Sending: the send_counters table that holds the caps, hard-failure counts, claim times,
and fewer index writes per job.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCOPES = ("GLOBAL_MINUTE", "GLOBAL_HOUR", "USER_MINUTE", "USER_HOUR", "USER_DAY", "MAILBOX_DAY")


def upgrade() -> None:
    op.create_table(
        "send_counters",
        sa.Column(
            "scope",
            sa.Enum(*SCOPES, name="scope", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period", "subject_id", name=op.f("pk_send_counters")),
    )
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hard_failures", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    # Cheaper job writes: an unused index goes, the replies' index only covers replies.
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_warmup_jobs_mailbox_id_status")
        batch_op.drop_index("ix_warmup_jobs_parent_job_id")
        batch_op.create_index(
            "ix_warmup_jobs_parent_job_id",
            ["parent_job_id"],
            unique=False,
            postgresql_where=sa.text("parent_job_id IS NOT NULL"),
            sqlite_where=sa.text("parent_job_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_warmup_jobs_parent_job_id")
        batch_op.create_index("ix_warmup_jobs_parent_job_id", ["parent_job_id"], unique=False)
        batch_op.create_index(
            "ix_warmup_jobs_mailbox_id_status", ["mailbox_id", "status"], unique=False
        )
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_column("hard_failures")
    op.drop_table("send_counters")
