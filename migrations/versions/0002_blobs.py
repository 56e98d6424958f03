"""blobs kept in the database (BLOB_STORE=database)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("id_team_agent", sa.String(128), primary_key=True),
        sa.Column("id_file", sa.String(128), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id_task", sa.String(128)),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_blobs_state", "blobs", ["state", "created_us"])
    op.create_table(
        "blob_chunks",
        sa.Column("id_team_agent", sa.String(128), primary_key=True),
        sa.Column("id_file", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id_team_agent", "id_file"],
            ["blobs.id_team_agent", "blobs.id_file"],
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("blob_chunks")
    op.drop_index("ix_blobs_state", table_name="blobs")
    op.drop_table("blobs")
