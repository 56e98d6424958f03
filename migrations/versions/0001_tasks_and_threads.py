"""tasks and threads

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id_team_agent", sa.String(128), primary_key=True),
        sa.Column("id_task", sa.String(128), primary_key=True),
        sa.Column("id_team", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("driver", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_tasks_agent_updated", "tasks", ["id_team_agent", "updated_us", "id_task"])
    op.create_table(
        "threads",
        sa.Column("id_team_agent", sa.String(128), primary_key=True),
        sa.Column("id_task", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("id_thread", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("id_run", sa.String(64)),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text()),
        sa.Column("model_turn", sa.Text()),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id_team_agent", "id_task"],
            ["tasks.id_team_agent", "tasks.id_task"],
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("id_team_agent", "id_task", "id_thread", name="uq_threads_thread"),
    )
    op.create_index("ix_threads_status", "threads", ["status"])


def downgrade() -> None:
    op.drop_index("ix_threads_status", table_name="threads")
    op.drop_table("threads")
    op.drop_index("ix_tasks_agent_updated", table_name="tasks")
    op.drop_table("tasks")
