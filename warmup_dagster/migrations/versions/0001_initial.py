"""Initial schema: plans, users, mailboxes, warmup_jobs, send_log, clock_anchors; seed plans.

Revision ID: 0001
Revises:
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (name, max mailboxes per user, sends per user per day)
SEED_PLANS = [
    ("default", 25, 2_000),
    ("pro", 500, 50_000),
    ("enterprise", 100_000, 2_000_000),
]


def upgrade() -> None:
    op.create_table(
        "clock_anchors",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("virtual_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("real_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_clock_anchors")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("max_mailboxes", sa.Integer(), nullable=False),
        sa.Column("daily_send_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("daily_send_limit > 0", name=op.f("ck_plans_daily_send_limit_positive")),
        sa.CheckConstraint("max_mailboxes > 0", name=op.f("ck_plans_max_mailboxes_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=320), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_users_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("smtp_host", sa.String(length=255), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column(
            "smtp_security",
            sa.Enum(
                "STARTTLS",
                "SSL",
                "NONE",
                name="smtp_security",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("smtp_username", sa.String(length=320), nullable=False),
        sa.Column("smtp_password_enc", sa.Text(), nullable=False),
        sa.Column("imap_host", sa.String(length=255), nullable=False),
        sa.Column("imap_port", sa.Integer(), nullable=False),
        sa.Column(
            "imap_security",
            sa.Enum(
                "STARTTLS",
                "SSL",
                "NONE",
                name="imap_security",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("imap_username", sa.String(length=320), nullable=False),
        sa.Column("imap_password_enc", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "ACTIVE",
                "PAUSED",
                "DISABLED",
                name="state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("ramp_start", sa.Integer(), nullable=False),
        sa.Column("ramp_step", sa.Integer(), nullable=False),
        sa.Column("reply_rate", sa.Float(), nullable=False),
        sa.Column("weekdays_only", sa.Boolean(), nullable=False),
        sa.Column("warmup_start_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("daily_limit > 0", name=op.f("ck_mailboxes_daily_limit_positive")),
        sa.CheckConstraint(
            "imap_port BETWEEN 1 AND 65535", name=op.f("ck_mailboxes_imap_port_range")
        ),
        sa.CheckConstraint(
            "ramp_start > 0 AND ramp_start <= daily_limit",
            name=op.f("ck_mailboxes_ramp_start_range"),
        ),
        sa.CheckConstraint("ramp_step >= 0", name=op.f("ck_mailboxes_ramp_step_nonnegative")),
        sa.CheckConstraint(
            "reply_rate >= 0 AND reply_rate <= 1",
            name=op.f("ck_mailboxes_reply_rate_range"),
        ),
        sa.CheckConstraint(
            "smtp_port BETWEEN 1 AND 65535", name=op.f("ck_mailboxes_smtp_port_range")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_mailboxes_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("email", name=op.f("uq_mailboxes_email")),
    )
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailboxes_domain"), ["domain"], unique=False)
        batch_op.create_index("ix_mailboxes_state", ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailboxes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "warmup_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "SEND",
                "REPLY",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("recipient_mailbox_id", sa.Integer(), nullable=True),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "PROCESSING",
                "SENT",
                "FAILED",
                "RETRY",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("picked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column(
            "parent_job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("in_reply_to", sa.String(length=255), nullable=True),
        sa.Column("references", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_reply", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_warmup_jobs_attempts_nonnegative")),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_warmup_jobs_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_job_id"],
            ["warmup_jobs.id"],
            name=op.f("fk_warmup_jobs_parent_job_id_warmup_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_warmup_jobs_recipient_mailbox_id_mailboxes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_warmup_jobs_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warmup_jobs")),
        sa.UniqueConstraint("message_id", name=op.f("uq_warmup_jobs_message_id")),
    )
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_warmup_jobs_mailbox_id_local_date",
            ["mailbox_id", "local_date"],
            unique=False,
        )
        batch_op.create_index(
            "ix_warmup_jobs_mailbox_id_status", ["mailbox_id", "status"], unique=False
        )
        batch_op.create_index("ix_warmup_jobs_parent_job_id", ["parent_job_id"], unique=False)
        batch_op.create_index("ix_warmup_jobs_status_due_at", ["status", "due_at"], unique=False)

    op.create_table(
        "send_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "SEND",
                "REPLY",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "PROCESSING",
                "SENT",
                "FAILED",
                "RETRY",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_reply", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["warmup_jobs.id"],
            name=op.f("fk_send_log_job_id_warmup_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_send_log_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_send_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_log")),
    )
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.create_index("ix_send_log_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_send_log_job_id", ["job_id"], unique=False)
        batch_op.create_index(
            "ix_send_log_mailbox_id_created_at",
            ["mailbox_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_send_log_user_id_created_at", ["user_id", "created_at"], unique=False
        )

    # Plans every installation starts with; users not given a plan get "default".
    plans = sa.table(
        "plans",
        sa.column("name", sa.String),
        sa.column("max_mailboxes", sa.Integer),
        sa.column("daily_send_limit", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        plans,
        [
            {
                "name": name,
                "max_mailboxes": boxes,
                "daily_send_limit": sends,
                "created_at": now,
            }
            for name, boxes, sends in SEED_PLANS
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_send_log_user_id_created_at")
        batch_op.drop_index("ix_send_log_mailbox_id_created_at")
        batch_op.drop_index("ix_send_log_job_id")
        batch_op.drop_index("ix_send_log_created_at")

    op.drop_table("send_log")
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_warmup_jobs_status_due_at")
        batch_op.drop_index("ix_warmup_jobs_parent_job_id")
        batch_op.drop_index("ix_warmup_jobs_mailbox_id_status")
        batch_op.drop_index("ix_warmup_jobs_mailbox_id_local_date")

    op.drop_table("warmup_jobs")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailboxes_user_id"))
        batch_op.drop_index("ix_mailboxes_state")
        batch_op.drop_index(batch_op.f("ix_mailboxes_domain"))

    op.drop_table("mailboxes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_plan_id"))

    op.drop_table("users")
    op.drop_table("plans")
    op.drop_table("clock_anchors")
