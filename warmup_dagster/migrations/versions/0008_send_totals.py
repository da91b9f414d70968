"""Running totals for the metrics: sends that count, errors by reason, claim-to-outcome times.

`send_counters` cannot back a Prometheus counter: it is pruned and its day counts are
reservations given back when an attempt does not send. `send_totals` only grows. The sends
already in the log are added up at the upgrade, so the sent totals equal the log's count;
errors and cycle times count from the upgrade on. Downgrading drops the table.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

METRICS = ("SENT", "ERROR", "CYCLE", "CYCLE_SECONDS")


def upgrade() -> None:
    totals = op.create_table(
        "send_totals",
        sa.Column(
            "metric",
            sa.Enum(*METRICS, name="metric", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "label", name=op.f("pk_send_totals")),
    )
    log = sa.table(
        "send_log", sa.column("kind"), sa.column("status"), sa.column("late", sa.Boolean)
    )
    sends = (
        sa.select(sa.literal("SENT"), sa.func.lower(log.c.kind), sa.func.count())
        .where(log.c.status == "SENT", log.c.late.is_(sa.false()))
        .group_by(log.c.kind)
    )
    op.execute(totals.insert().from_select(["metric", "label", "value"], sends))


def downgrade() -> None:
    op.drop_table("send_totals")
