"""The send log marks late outcomes: an attempt that had lost its job is logged, not counted.

When a claim takes over a job whose lease ran out, it closes the abandoned attempt with a log
row; if the run that lost the job reports after all, its row is kept for the record (a
duplicate send shows) with `late` set, and no count includes it. Existing rows are not late.
Downgrading drops the mark: the older schema counted every row, as the code of its time did.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_column("late")
