"""The network sources and what they run on: the WebSocket and SSE sources, their connection
classes, the reconnecting subscription both share, in-memory and async-iterable sources,
and the clock their waits go through."""
