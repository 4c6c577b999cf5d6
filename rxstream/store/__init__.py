"""Conversation turns kept: ``SQLiteStore`` (one machine) and ``PostgresStore`` (many), the implementations of
``ContextStore``, and the one turn <-> row encoding both write (``_turns``)."""
