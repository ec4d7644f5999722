"""The MCP gateway: fronts upstream MCP servers, and Lictor governs every tool call.

- :mod:`~lictor.mcp_proxy.config`: the gateway's TOML configuration.
- :mod:`~lictor.mcp_proxy.translate`: MCP messages <-> Lictor requests and answers (sans-IO).
- :mod:`~lictor.mcp_proxy.pins`: tool-definition pinning and tool-poisoning tripwires.
- :mod:`~lictor.mcp_proxy.proxy`: upstream connections, stdio and streamable HTTP serving.

This package imports only the configuration and pins eagerly; the MCP SDK is imported by
``translate`` and ``proxy``, which a caller imports explicitly.
"""
