"""The send log records each send's local day, which plan limits and quotas count it for.

A user's mailboxes in several timezones have different local days at one instant, so a time
range can't tell which day a send counted for. Existing entries take their job's day.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_date", sa.Date(), nullable=True))
    op.execute(
        "UPDATE send_log SET local_date = "
        "(SELECT local_date FROM warmup_jobs WHERE warmup_jobs.id = send_log.job_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_column("local_date")
