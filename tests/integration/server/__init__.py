"""Integration tests of the HTTP API (``lictor.server``) through an in-process ASGI transport."""
