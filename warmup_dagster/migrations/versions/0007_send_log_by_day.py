"""The send log is read by local day: the fill rate and the audit load one day's rows.

A day's report (`warmup_dagster.fill`) and the counter audit's day scopes select the send
log by `local_date`; without an index each of them read the whole history.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_send_log_local_date", "send_log", ["local_date"])


def downgrade() -> None:
    op.drop_index("ix_send_log_local_date", table_name="send_log")
