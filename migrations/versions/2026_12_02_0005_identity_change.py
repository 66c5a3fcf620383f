"""identity_change: the log of changes of who may do what, which every instance reads
at most a second apart to forget the identities it cached (and end the streams a
change names) even when the broker's message about it was lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("ends_streams", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_change")),
    )
    op.create_index(
        op.f("ix_identity_change_created_at"), "identity_change", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_identity_change_created_at"), table_name="identity_change")
    op.drop_table("identity_change")
