"""SQLAlchemy: engines, migrations, the blob store in SQL, and the TaskStore for other async drivers."""

from adapters.sqlalchemy_store.engine import Database, PoolSettings, create_database
from adapters.sqlalchemy_store.store import SqlAlchemyTaskStore

__all__ = ["Database", "PoolSettings", "SqlAlchemyTaskStore", "create_database"]
