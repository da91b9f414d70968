"""The receiving side: engagements, each mailbox's engagement state, and the REPLIED status.

`engagements` holds one row per delivered warmup message for the recipient's side to handle
over IMAP (where it landed, what was done to it, its reply); `engagement_mailboxes` each
mailbox's lease, last pass and pause. A job whose message was answered becomes REPLIED, a
delivered send like SENT (`queue.states.DELIVERED`), so the status constraints of
`warmup_jobs` and `send_log` (they share the one status vocabulary) take the new name.
Downgrading turns REPLIED jobs back into SENT ones and drops the tables.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_STATUSES = ("PENDING", "PROCESSING", "SENT", "FAILED", "RETRY")
NEW_STATUSES = (*OLD_STATUSES, "REPLIED")
PLACEMENTS = ("PENDING", "INBOX", "SPAM", "NOT_FOUND")
SENT_COPIES = ("PENDING", "FILED", "ABSENT")


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _statuses(values: tuple[str, ...]) -> None:
    """Give both status columns the constraint of `values` (same name, new list)."""
    listed = ", ".join(f"'{v}'" for v in values)
    for table in ("warmup_jobs", "send_log"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_status"), type_="check")
            batch_op.create_check_constraint("status", f"status IN ({listed})")


def upgrade() -> None:
    _statuses(NEW_STATUSES)
    op.create_table(
        "engagements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("recipient_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("sender_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("placement", _enum(PLACEMENTS, "placement"), nullable=False),
        sa.Column("seen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("filed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "reply_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("sent_copy", _enum(SENT_COPIES, "sent_copy"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("turn >= 1", name=op.f("ck_engagements_turn_positive")),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["warmup_jobs.id"],
            name=op.f("fk_engagements_job_id_warmup_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reply_job_id"],
            ["warmup_jobs.id"],
            name=op.f("fk_engagements_reply_job_id_warmup_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_engagements_recipient_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_engagements_sender_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagements")),
        sa.UniqueConstraint("message_id", name=op.f("uq_engagements_message_id")),
    )
    with op.batch_alter_table("engagements", schema=None) as batch_op:
        batch_op.create_index("ix_engagements_done_due_at", ["done", "due_at"])
        batch_op.create_index("ix_engagements_sent_copy_due_at", ["sent_copy", "due_at"])
        batch_op.create_index("ix_engagements_sent_at", ["sent_at"])
        batch_op.create_index(
            "ix_engagements_sender_mailbox_id_sent_at", ["sender_mailbox_id", "sent_at"]
        )
        batch_op.create_index(
            "ix_engagements_recipient_mailbox_id_done", ["recipient_mailbox_id", "done"]
        )
    op.create_table(
        "engagement_mailboxes",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=128), nullable=True),
        sa.Column("last_pass_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_engagement_mailboxes_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_engagement_mailboxes")),
    )


def downgrade() -> None:
    op.drop_table("engagement_mailboxes")
    op.drop_table("engagements")
    op.execute("UPDATE warmup_jobs SET status = 'SENT' WHERE status = 'REPLIED'")
    _statuses(OLD_STATUSES)
