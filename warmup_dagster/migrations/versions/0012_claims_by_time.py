"""Claims by time: the claim counts those of the arrival margin before each minute.

A claim made shortly before a minute began may arrive in it, so it counts against that
minute's caps too (`queue.caps.carried`). The index is partial: unclaimed jobs (everything
planning writes) are not in it.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_warmup_jobs_picked_at",
        "warmup_jobs",
        ["picked_at"],
        postgresql_where=sa.text("picked_at IS NOT NULL"),
        sqlite_where=sa.text("picked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_warmup_jobs_picked_at", table_name="warmup_jobs")
