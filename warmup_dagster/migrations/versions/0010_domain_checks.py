"""Domain checks: each sending domain's latest MX, SPF, DKIM, DMARC and blocklist results.

Planning reads the gate reason and the listing of a mailbox's domain; a domain without a row
(not checked yet) is planned as before. Downgrading drops the table.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STATUSES = ("PASS", "WARN", "FAIL")


def upgrade() -> None:
    op.create_table(
        "domain_checks",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="status", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("gate_reason", sa.Text(), nullable=True),
        sa.Column("listed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("listed_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_domain_checks")),
    )
    op.create_index("ix_domain_checks_status", "domain_checks", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_domain_checks_status", table_name="domain_checks")
    op.drop_table("domain_checks")
