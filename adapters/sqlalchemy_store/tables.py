"""The schema, as SQLAlchemy Core tables. Alembic owns its creation (migrations/)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = String(128)

tasks = Table(
    "tasks",
    metadata,
    Column("id_team_agent", ID, primary_key=True),
    Column("id_task", ID, primary_key=True),
    Column("id_team", ID, nullable=False),
    Column("title", Text, nullable=False),
    Column("driver", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_tasks_agent_updated", "id_team_agent", "updated_us", "id_task"),
)

threads = Table(
    "threads",
    metadata,
    Column("id_team_agent", ID, primary_key=True),
    Column("id_task", ID, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("id_thread", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("id_run", String(64)),
    Column("request", Text, nullable=False),
    Column("response", Text),
    Column("model_turn", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    ForeignKeyConstraint(["id_team_agent", "id_task"], ["tasks.id_team_agent", "tasks.id_task"], ondelete="CASCADE"),
    UniqueConstraint("id_team_agent", "id_task", "id_thread", name="uq_threads_thread"),
    Index("ix_threads_status", "status"),
)

# Files kept in the database (BLOB_STORE=database): metadata, then the bytes in chunks.
# state: "writing" while an upload runs (invisible), "ready" once committed.
blobs = Table(
    "blobs",
    metadata,
    Column("id_team_agent", ID, primary_key=True),
    Column("id_file", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("mime_type", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("id_task", ID),
    Column("size", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_blobs_state", "state", "created_us"),
)

blob_chunks = Table(
    "blob_chunks",
    metadata,
    Column("id_team_agent", ID, primary_key=True),
    Column("id_file", ID, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    ForeignKeyConstraint(["id_team_agent", "id_file"], ["blobs.id_team_agent", "blobs.id_file"], ondelete="CASCADE"),
)
