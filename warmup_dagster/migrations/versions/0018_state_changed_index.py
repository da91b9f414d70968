"""An index on `mailboxes.state_changed_at`: catch-up finds the mailboxes resumed in the last
two days by it (a mailbox paused when its day was planned, active again, owes that day's
quota), without reading every mailbox (`warmup_dagster.planning.owing`).

Downgrading drops the index.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_mailboxes_state_changed_at", "mailboxes", ["state_changed_at"])


def downgrade() -> None:
    op.drop_index("ix_mailboxes_state_changed_at", table_name="mailboxes")
