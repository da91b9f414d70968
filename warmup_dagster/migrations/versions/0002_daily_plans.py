"""Daily plans: the daily_quotas table, mailbox throttling, planning indexes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_quotas",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("ramp", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("first_slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_daily_quotas_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "local_date", name=op.f("pk_daily_quotas")),
    )
    with op.batch_alter_table("daily_quotas", schema=None) as batch_op:
        batch_op.create_index("ix_daily_quotas_local_date", ["local_date"], unique=False)

    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("throttle", sa.Float(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("throttle_reason", sa.Text(), nullable=True))
        batch_op.create_check_constraint("throttle_range", "throttle >= 0 AND throttle <= 1")

    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_seed", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.alter_column("subject", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
        # Key checks cost more than the rows at a million jobs a day (see the model).
        batch_op.drop_constraint("fk_warmup_jobs_user_id_users", type_="foreignkey")
        batch_op.drop_constraint(
            "fk_warmup_jobs_recipient_mailbox_id_mailboxes", type_="foreignkey"
        )
        batch_op.create_index(
            "ix_warmup_jobs_local_date_recipient_mailbox_id",
            ["local_date", "recipient_mailbox_id"],
            unique=False,
        )
        batch_op.create_index("ix_warmup_jobs_user_id_due_at", ["user_id", "due_at"], unique=False)


def downgrade() -> None:
    # Jobs planned but not yet sent have no words yet; the older schema requires some.
    op.execute("UPDATE warmup_jobs SET subject = '', body = '' WHERE subject IS NULL")
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_warmup_jobs_user_id_due_at")
        batch_op.drop_index("ix_warmup_jobs_local_date_recipient_mailbox_id")
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("subject", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("content_seed")
        batch_op.create_foreign_key("fk_warmup_jobs_user_id_users", "users", ["user_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_warmup_jobs_recipient_mailbox_id_mailboxes",
            "mailboxes",
            ["recipient_mailbox_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_mailboxes_throttle_range"), type_="check")
        batch_op.drop_column("throttle_reason")
        batch_op.drop_column("throttle")

    with op.batch_alter_table("daily_quotas", schema=None) as batch_op:
        batch_op.drop_index("ix_daily_quotas_local_date")

    op.drop_table("daily_quotas")
