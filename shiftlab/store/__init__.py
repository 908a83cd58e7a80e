"""The results store (design contract 5): SQLite embedded, PostgreSQL for clusters; knows no models."""

from shiftlab.store.store import ModelRow, ResultKey, Store, TaskRow

__all__ = ["ModelRow", "ResultKey", "Store", "TaskRow"]
