"""SQLite results store (design contract 5)."""

from shiftlab.store.sqlite_store import ModelRow, Store, TaskId, TaskRow

__all__ = ["ModelRow", "Store", "TaskId", "TaskRow"]
