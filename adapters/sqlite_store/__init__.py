"""The TaskStore on SQLite through the standard library's sqlite3 (the default database)."""

from adapters.sqlite_store.connections import SqliteConnections
from adapters.sqlite_store.store import SqliteTaskStore

__all__ = ["SqliteConnections", "SqliteTaskStore"]
