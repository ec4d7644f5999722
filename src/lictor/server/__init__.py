"""The HTTP decision API (``lictor serve``): a thin ASGI edge over the Governor.

``runtime`` wires the store, audit writer, Governor and credentials together; ``app``
maps HTTP to them; ``auth`` holds the one route-to-roles table; ``problems`` the one
error-to-status table. No policy logic lives here.
"""
