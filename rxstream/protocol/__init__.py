"""Sans-I/O protocol code: WebSocket frame reading, the SSE decoder and the recovery decision.

Bytes and facts in, events and decisions out; the transports feed them and act on the
answers. Like the core, this layer imports no asyncio, httpx, websockets or sqlite3.
"""
