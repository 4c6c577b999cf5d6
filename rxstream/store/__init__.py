"""Conversation turns in SQLite: ``SQLiteStore``, one implementation of ``ContextStore``."""
