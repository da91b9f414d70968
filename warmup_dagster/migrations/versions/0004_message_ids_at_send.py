"""Message-IDs are set when a job is first attempted, not when it is planned.

Planning writes a million jobs a day; the unique index on random Message-IDs was the dearest
part of each row's write. Jobs keep the ids they already have.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_warmup_jobs_message_id", type_="unique")
        batch_op.alter_column("message_id", existing_type=sa.String(255), nullable=True)
        batch_op.alter_column("token", existing_type=sa.String(64), nullable=True)
        batch_op.create_index(
            "uq_warmup_jobs_message_id",
            ["message_id"],
            unique=True,
            postgresql_where=sa.text("message_id IS NOT NULL"),
            sqlite_where=sa.text("message_id IS NOT NULL"),
        )


def downgrade() -> None:
    # The old schema wants an id on every job: jobs never attempted get a placeholder that is
    # not a warmup id (the receiving side will not recognise their mail).
    op.execute(
        "UPDATE warmup_jobs SET message_id = '<unattempted-' || id || '@invalid>', token = '' "
        "WHERE message_id IS NULL"
    )
    with op.batch_alter_table("warmup_jobs", schema=None) as batch_op:
        batch_op.drop_index("uq_warmup_jobs_message_id")
        batch_op.alter_column("token", existing_type=sa.String(64), nullable=False)
        batch_op.alter_column("message_id", existing_type=sa.String(255), nullable=False)
        batch_op.create_unique_constraint("uq_warmup_jobs_message_id", ["message_id"])
