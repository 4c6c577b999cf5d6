"""The synchronous core: values, errors, the transcript, stages and the demand between them.

Nothing here does I/O or knows of a clock, a socket or a file: the core imports no asyncio,
httpx, websockets or sqlite3 (import-linter checks it, see ``.importlinter``). Every other
layer builds on it; it builds on none of them.
"""
