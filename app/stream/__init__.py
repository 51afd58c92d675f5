"""The live stream of changes: Server-Sent Events of the change feed (issue 27)."""
