"""Mailboxes may sign in with OAuth2 (XOAUTH2): `mailbox_oauth` holds a mailbox's provider,
its encrypted refresh token and the shared, encrypted access token with its expiry.

A mailbox without a row signs in with its password, as every mailbox did before, so nothing
needs a backfill. Downgrading drops the table (those mailboxes are left with their stored
passwords, empty for OAuth2 mailboxes: re-import them with passwords).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_oauth",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_oauth_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_oauth")),
    )


def downgrade() -> None:
    op.drop_table("mailbox_oauth")
