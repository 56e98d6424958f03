"""The SQL TaskStore (SQLite by default, PostgreSQL for scale-out)."""

from adapters.sqlalchemy_store.engine import Database, PoolSettings, create_database
from adapters.sqlalchemy_store.store import SqlAlchemyTaskStore

__all__ = ["Database", "PoolSettings", "SqlAlchemyTaskStore", "create_database"]
