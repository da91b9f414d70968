"""Run beats: `run_beats` keeps each running Dagster run's last sign of life, so a run whose
process died (a crashed daemon machine took its runs with it) is failed and its slot freed
instead of staying STARTED (`warmup_dagster.liveness`).

A new table, empty until runs start; downgrading drops it.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_beats",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_beats")),
    )


def downgrade() -> None:
    op.drop_table("run_beats")
